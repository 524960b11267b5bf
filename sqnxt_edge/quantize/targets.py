"""Which CPUs an int8 file is right on: CPU classes by the ISA features that change onnxruntime's int8 kernels, and
which quantization configurations are numerically safe on each.

Why: the numerics of an int8 file depend on the CPU that RUNS it, not the one that exported it. On x86 without VNNI
(AVX2, or AVX-512 without VNNI) onnxruntime multiplies U8S8 with VPMADDUBSW, which adds pairs of u8 x s8 products in
16 bits and saturates (255 x 127 x 2 > 32767): a full-range U8S8 file that is exact on a VNNI machine kept 90% top-1
agreement with fp32 on an AVX2-only CPU (benchmarks/int8/cpu_classes.json; onnxruntime's docs say: use reduce_range
there). 7-bit weights (`reduce_range`) keep every pair sum inside 16 bits (255 x 63 x 2 = 32130); S8S8 and U8U8 run
on other kernels there; VNNI (VPDPBUSD) and ARM (NEON widening multiplies, SDOT/UDOT) accumulate in 32 bits.

A target is a CPU class, or `portable`: right on every class, the default, because users ship a file to CPUs they
did not export on.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ExportError
from .config import Int8Config

__all__ = [
    "CpuClass",
    "CPU_CLASSES",
    "PORTABLE",
    "TARGETS",
    "class_of",
    "isa_key",
    "safe_on",
    "covers",
    "is_safe",
    "check_target",
    "target_suffix",
]

PORTABLE = "portable"
# ISA features (runner.cpu_info()["features"]) that change which int8 kernels a runtime picks: the cache key.
_KERNEL_FEATURES = ("avx2", "avx512", "vnni", "amx", "neon", "dotprod", "i8mm")


@dataclass(frozen=True)
class CpuClass:
    """A family of CPUs on which an int8 file computes the same (same kernels, same saturation)."""

    name: str
    arch: str  # "x86" or "arm"
    description: str
    examples: str
    u8s8_saturates: bool  # full-range U8S8 loses accuracy here (VPMADDUBSW's 16-bit pair sums)
    emulation: str | None  # the `devices emulate --profile` that presents this class; None: not emulable here


CPU_CLASSES: dict[str, CpuClass] = {
    c.name: c
    for c in (
        CpuClass(
            name="x86-vnni",
            arch="x86",
            description="x86-64 with AVX-512 VNNI or AVX-VNNI (int8 dot products, 32-bit sums)",
            examples="Intel Ice Lake / Alder Lake and later, AMD Zen 4 and later",
            u8s8_saturates=False,
            emulation=None,  # QEMU's TCG has no AVX-512: tested natively
        ),
        CpuClass(
            name="x86-avx2",
            arch="x86",
            description="x86-64 without VNNI: AVX2, or AVX-512 without VNNI (VPMADDUBSW, 16-bit sums)",
            examples="Intel Haswell to Skylake/Cascade Lake, AMD Zen 1-3",
            u8s8_saturates=True,
            emulation="x86-64-v3",
        ),
        CpuClass(
            name="arm-dotprod",
            arch="arm",
            description="64-bit ARM with dot-product instructions (ARMv8.2 SDOT/UDOT)",
            examples="Cortex-A76/A78/X1, Raspberry Pi 5, RK3588's big cores, Apple silicon",
            u8s8_saturates=False,
            emulation="rpi5",
        ),
        CpuClass(
            name="arm-neon",
            arch="arm",
            description="64-bit ARM without dot product (ARMv8.0 NEON)",
            examples="Cortex-A72/A53: Raspberry Pi 4 and 3, many older boards",
            u8s8_saturates=False,
            emulation="rpi4",
        ),
    )
}
TARGETS = (PORTABLE, *CPU_CLASSES)


def class_of(cpu: dict) -> CpuClass:
    """The class of a CPU as `runner.cpu_info()` describes it (this machine's or a board's)."""
    features = cpu.get("features") or {}
    arch = str(cpu.get("arch", "")).lower()
    if arch in ("aarch64", "arm64") or arch.startswith("arm"):
        return CPU_CLASSES["arm-dotprod" if features.get("dotprod") or cpu.get("int8_dot") else "arm-neon"]
    return CPU_CLASSES["x86-vnni" if features.get("vnni") or cpu.get("int8_dot") else "x86-avx2"]


def isa_key(cpu: dict, runtime: str) -> str:
    """`x86_64|avx2,avx512,vnni|onnxruntime 1.32.0`: what decides int8 kernels, never the model string (a VM calls
    Zen 3 and Zen 4 both "AMD EPYC")."""
    features = cpu.get("features") or {}
    isa = ",".join(f for f in _KERNEL_FEATURES if features.get(f)) or "-"
    return f"{cpu.get('arch')}|{isa}|{runtime}"


def safe_on(config: Int8Config) -> tuple[str, ...]:
    """The CPU classes on which `config` computes what it was calibrated for (no saturation)."""
    full_range_u8s8 = (config.activation_type, config.weight_type, config.reduce_range) == ("uint8", "int8", False)
    return tuple(name for name, c in CPU_CLASSES.items() if not (full_range_u8s8 and c.u8s8_saturates))


def covers(target: str) -> tuple[str, ...]:
    """The classes a file made for `target` must be right on."""
    return tuple(CPU_CLASSES) if target == PORTABLE else (target,)


def is_safe(config: Int8Config, target: str) -> bool:
    """Whether `config` is numerically safe on every class `target` covers."""
    return set(covers(target)) <= set(safe_on(config))


def check_target(target: str, here: dict | None = None) -> str:
    """`target` as a known name (`here` means this machine's class), or a one-line ExportError."""
    name = str(target or PORTABLE).strip().lower()
    if name == "here":
        if here is None:
            from ..runner import cpu_info

            here = cpu_info()
        return class_of(here).name
    if name not in TARGETS:
        raise ExportError(f"unknown --int8-target {target!r}; choose {', '.join(TARGETS)} or here")
    return name


def target_suffix(target: str) -> str:
    """The precision part of a file name: `int8` for the portable file, `int8-x86-vnni` for a class's own."""
    return "int8" if target == PORTABLE else f"int8-{target}"
