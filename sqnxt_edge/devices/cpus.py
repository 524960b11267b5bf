"""The CPUs an emulated board can be: what QEMU presents (its `-cpu` model) and the files that board's Linux shows
about it (/proc/cpuinfo, /sys/devices/system/cpu), as data.

Two kinds, one shape (`arch`, `qemu_cpu`, `cores`, `view()`):

- ARM cores (`Core`): a Raspberry Pi's core under `qemu-aarch64`, run in the cached aarch64 user space (`rootfs`).
- x86 classes (`X86Class`): an older x86 instruction set under `qemu-x86_64`, run with this machine's own Python and
  its installed runtimes. int8 numerics depend on the CPU that runs a file: onnxruntime's AVX2 kernels (without
  VNNI) add pairs of u8 x s8 products in 16 bits and saturate (VPMADDUBSW), so a full-range U8S8 model made on a
  VNNI machine loses accuracy there; its SSE kernels widen to 16 bits first and do not. QEMU's TCG has no AVX-512,
  so a VNNI class cannot be emulated: those CPUs are tested natively.

Why the files are faked: QEMU user mode shows the guest the host's /proc/cpuinfo (on this x86 machine: avx512,
vnni), which would contradict the CPUID the emulated CPU answers; the runner's `cpu_info()` reads the files, the
kernels' dispatch reads CPUID (x86) or AT_HWCAP (ARM): both must tell the same story. The `qemu_cpu` strings drop
the system features TCG cannot give (x2apic, pcid, ...), which QEMU would otherwise warn about on every start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import DeviceError

__all__ = ["Core", "X86Class", "CORES", "X86_CLASSES", "EMULATED", "cpu_for", "cpuinfo_text", "view"]

QEMU = {"aarch64": "qemu-aarch64-static", "x86_64": "qemu-x86_64-static"}


@dataclass(frozen=True)
class Core:
    """How one board's CPU looks from inside: QEMU's CPU model and the /proc/cpuinfo fields of the real board."""

    qemu_cpu: str
    part: str  # ARM "CPU part" id (runner._ARM_PARTS names it)
    variant: str
    revision: int
    features: str  # /proc/cpuinfo "Features" of the real board
    cores: int
    max_khz: int
    min_khz: int
    model: str | None = None  # /sys/firmware/devicetree/base/model
    hardware: str | None = None  # /proc/cpuinfo Hardware / Revision lines of a Pi
    board_revision: str | None = None
    arch: ClassVar[str] = "aarch64"


@dataclass(frozen=True)
class X86Class:
    """An x86-64 microarchitecture level as one QEMU CPU model: its CPUID brand string and the Linux flags of
    the instruction set it answers with (what the int8 kernels dispatch on)."""

    qemu_cpu: str
    model: str  # CPUID brand string of that QEMU model (what /proc/cpuinfo "model name" says)
    flags: str
    int8_kernels: str  # what onnxruntime's int8 GEMM does on this class
    cores: int = 4
    arch: ClassVar[str] = "x86_64"


_X86_BASE = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss syscall nx "
    "rdtscp lm constant_tsc rep_good nopl xtopology cpuid pni ssse3 cx16 sse4_1 sse4_2 popcnt hypervisor lahf_lm"
)

CORES: dict[str, Core] = {
    # Raspberry Pi 4 Model B: BCM2711, 4x Cortex-A72 r0p3, ARMv8.0 (no crypto, no dotprod), 1.5 GHz
    "rpi4": Core(
        "cortex-a72",
        "0xd08",
        "0x0",
        3,
        "fp asimd evtstrm crc32 cpuid",
        4,
        1500000,
        600000,
        "Raspberry Pi 4 Model B Rev 1.4",
        "BCM2835",
        "c03114",
    ),
    # Raspberry Pi 5: BCM2712, 4x Cortex-A76 r4p1, ARMv8.2 with dotprod, 2.4 GHz
    "rpi5": Core(
        "cortex-a76",
        "0xd0b",
        "0x4",
        1,
        "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp",
        4,
        2400000,
        1500000,
        "Raspberry Pi 5 Model B Rev 1.0",
        "BCM2835",
        "d04170",
    ),
    # any 64-bit ARM board: the lowest common core, 4x Cortex-A53 (ARMv8.0, the Pi 3 / Zero 2 W class), 1.2 GHz
    "generic-arm64": Core("cortex-a53", "0xd03", "0x0", 4, "fp asimd evtstrm crc32 cpuid", 4, 1200000, 600000),
}

X86_CLASSES: dict[str, X86Class] = {
    # x86-64-v3: AVX2 + FMA, no AVX-512, no VNNI (Haswell to Alder Lake without AVX-VNNI, AMD Zen 1-3)
    "x86-64-v3": X86Class(
        "Haswell-v4,-pcid,-x2apic,-tsc-deadline,-invpcid,-spec-ctrl",
        "Intel Core Processor (Haswell, no TSX, IBRS)",
        _X86_BASE + " pclmulqdq fma movbe aes xsave avx f16c rdrand abm fsgsbase bmi1 avx2 smep bmi2 erms xsaveopt",
        "AVX2 VPMADDUBSW: u8 x s8 pairs summed in 16 bits, saturating (full-range U8S8 weights overflow)",
    ),
    # x86-64-v2: SSE4.2, no AVX (Nehalem, Westmere; many small x86 boxes and old servers)
    "x86-64-v2": X86Class(
        "Nehalem-v2,-spec-ctrl",
        "Intel Core i7 9xx (Nehalem Core i7, IBRS update)",
        _X86_BASE,
        "SSE2: operands widened to 16 bits, products summed in 32 bits (no saturation)",
    ),
}

EMULATED: dict[str, Core | X86Class] = {**CORES, **X86_CLASSES}


def cpu_for(profile: str | None) -> Core | X86Class:
    """The emulated CPU of `profile`, or a one-line DeviceError naming the ones there are."""
    if profile not in EMULATED:
        raise DeviceError(f"no emulation for profile {profile!r}; emulated CPUs: {', '.join(EMULATED)}")
    return EMULATED[profile]


def cpuinfo_text(cpu: Core | X86Class) -> str:
    """/proc/cpuinfo as that CPU's Linux prints it."""
    if isinstance(cpu, X86Class):
        block = (
            "processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: {c.model}\nphysical id\t: 0\n"
            "siblings\t: {c.cores}\ncore id\t\t: {i}\ncpu cores\t: {c.cores}\nflags\t\t: {c.flags}\n\n"
        )
        return "".join(block.format(i=i, c=cpu) for i in range(cpu.cores))
    block = (
        "processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: {c.features}\nCPU implementer\t: 0x41\n"
        "CPU architecture: 8\nCPU variant\t: {c.variant}\nCPU part\t: {c.part}\nCPU revision\t: {c.revision}\n\n"
    )
    text = "".join(block.format(i=i, c=cpu) for i in range(cpu.cores))
    if cpu.hardware:
        text += f"Hardware\t: {cpu.hardware}\nRevision\t: {cpu.board_revision}\nModel\t\t: {cpu.model}\n"
    return text


def view(cpu: Core | X86Class) -> dict[str, str]:
    """Every file of the board's CPU view, by absolute path (what runner.cpu_info and pytorch-cpuinfo read)."""
    last = cpu.cores - 1
    every = f"0-{last}" if last else "0"
    files = {"/proc/cpuinfo": cpuinfo_text(cpu)}
    base = "/sys/devices/system/cpu"
    files.update({f"{base}/{n}": every + "\n" for n in ("possible", "present", "online")})
    files.update({f"{base}/kernel_max": f"{last}\n", f"{base}/offline": "\n"})
    for i in range(cpu.cores):
        files.update(
            {
                f"{base}/cpu{i}/cpufreq/scaling_cur_freq": "",  # the emulator has no clock: unknown, not the host's
                f"{base}/cpu{i}/cpufreq/scaling_governor": "",
                f"{base}/cpu{i}/topology/physical_package_id": "0\n",
                f"{base}/cpu{i}/topology/core_id": f"{i}\n",
                f"{base}/cpu{i}/topology/core_siblings_list": every + "\n",
                f"{base}/cpu{i}/topology/package_cpus_list": every + "\n",
                f"{base}/cpu{i}/topology/thread_siblings_list": f"{i}\n",
                f"{base}/cpu{i}/topology/core_cpus_list": f"{i}\n",
            }
        )
        if isinstance(cpu, Core):
            midr = (0x41 << 24) | (int(cpu.variant, 16) << 20) | (0xF << 16) | (int(cpu.part, 16) << 4) | cpu.revision
            files.update(
                {
                    f"{base}/cpu{i}/cpufreq/cpuinfo_max_freq": f"{cpu.max_khz}\n",
                    f"{base}/cpu{i}/cpufreq/cpuinfo_min_freq": f"{cpu.min_khz}\n",
                    f"{base}/cpu{i}/regs/identification/midr_el1": f"0x{midr:016x}\n",
                }
            )
        else:  # no clock of its own: a class, not a part
            files.update({f"{base}/cpu{i}/cpufreq/cpuinfo_max_freq": "", f"{base}/cpu{i}/cpufreq/cpuinfo_min_freq": ""})
    if isinstance(cpu, Core):
        files["/sys/firmware/devicetree/base/model"] = (cpu.model + "\x00") if cpu.model else ""
    return files
