"""Built-in hardware profiles: the facts of common edge boards, as data.

A profile says what a board *should* be (cores, clock, ISA features, memory, fp32 peak) so that a registered device
gets sensible defaults (threads = cores) and `sqnxt-edge devices check` can warn when the board reports something
else. Measured facts always win: the runner reads the real CPU on every run (`runner.cpu_info()`).

Peak fp32 GFLOP/s = cores x GHz x FLOP/cycle/core (A72: 2x 64-bit NEON FMA pipes = 8 FLOP/cycle; A76: 2x 128-bit
= 16 FLOP/cycle; A57: 8 FLOP/cycle), as derived in /work/shared/toolchain-notes.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["Profile", "PROFILES", "get_profile", "local_profile", "list_profiles"]


@dataclass(frozen=True)
class Profile:
    """What a board is expected to be. `None` means unknown / not fixed for this profile."""

    name: str
    description: str
    arch: str | None                  # platform.machine() of a 64-bit OS: aarch64, x86_64
    cpu: str | None                   # core name as cpu_info() reports it (from the ARM "CPU part" id)
    cores: int | None
    clock_ghz: float | None
    neon: bool | None = None
    dotprod: bool | None = None       # ARMv8.2 SDOT/UDOT: what makes int8 faster than fp32 on ARM
    memory_gb: tuple[float, ...] = ()
    peak_gflops_fp32: float | None = None
    sources: tuple[str, ...] = ()
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["memory_gb"] = list(self.memory_gb)
        d["sources"] = list(self.sources)
        return d

    def expected_features(self) -> dict[str, bool]:
        """The ISA features this profile fixes (the ones `check` compares with the board)."""
        return {k: v for k, v in (("neon", self.neon), ("dotprod", self.dotprod)) if v is not None}


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile(
        "rpi4", "Raspberry Pi 4 Model B (BCM2711)", "aarch64", "Cortex-A72", 4, 1.5, neon=True, dotprod=False,
        memory_gb=(1, 2, 4, 8), peak_gflops_fp32=48.0,
        sources=("https://www.raspberrypi.com/products/raspberry-pi-4-model-b/specifications/",
                 "https://github.com/google/XNNPACK (Raspberry Pi 4 latencies)",
                 "https://github.com/geerlingguy/top500-benchmark"),
        notes="No int8 dot product: int8 is often no faster than fp32. Use 64-bit Raspberry Pi OS.",
    ),
    Profile(
        "rpi5", "Raspberry Pi 5 (BCM2712)", "aarch64", "Cortex-A76", 4, 2.4, neon=True, dotprod=True,
        memory_gb=(2, 4, 8, 16), peak_gflops_fp32=154.0,
        sources=("https://www.raspberrypi.com/products/raspberry-pi-5/",
                 "https://github.com/geerlingguy/top500-benchmark"),
        notes="ARMv8.2 dotprod: int8 kernels can beat fp32.",
    ),
    Profile(
        "jetson-nano", "NVIDIA Jetson Nano (CPU only: the GPU is not used)", "aarch64", "Cortex-A57", 4, 1.43,
        neon=True, dotprod=False, memory_gb=(4,), peak_gflops_fp32=45.8,
        sources=("https://developer.nvidia.com/embedded/jetson-nano",),
        notes="JetPack 4 ships Python 3.6; install a newer Python (e.g. 3.10 from deadsnakes) for the runner.",
    ),
    Profile(
        "generic-arm64", "Any 64-bit ARM Linux board", "aarch64", None, None, None, neon=True, dotprod=None,
        notes="Threads default to the runner's choice; the real CPU is read from the board.",
    ),
)}


def local_profile() -> Profile:
    """This machine, read (never assumed) through the runner's own cpu_info()."""
    from ..runner import cpu_info

    info = cpu_info()
    feats = info.get("features", {})
    return Profile(
        "local", f"This machine ({info.get('model')})", info.get("arch"), info.get("model"), info.get("cores"), None,
        neon=feats.get("neon"), dotprod=feats.get("dotprod"),
        notes="Read from this machine with runner.cpu_info().",
        extra={"vnni": feats.get("vnni"), "avx512": feats.get("avx512"), "os": info.get("os")},
    )


def list_profiles() -> list[str]:
    return [*PROFILES, "local"]


def get_profile(name: str) -> Profile | None:
    """The built-in profile called `name`, or None."""
    if name == "local":
        return local_profile()
    return PROFILES.get(name)
