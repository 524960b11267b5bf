"""Built-in hardware profiles: the facts of common edge boards, as data.

A profile says what a board *should* be (cores, clock, ISA features, memory, fp32 peak) so that a registered device
gets sensible defaults (threads = cores) and `sqnxt-edge devices check` can warn when the board reports something
else. Measured facts always win: the runner reads the real CPU on every run (`runner.cpu_info()`).

Peak fp32 GFLOP/s = cores x GHz x FLOP/cycle/core (A72: 2x 64-bit NEON FMA pipes = 8 FLOP/cycle; A76: 2x 128-bit
= 16 FLOP/cycle; A57: 8 FLOP/cycle), as derived in /work/shared/toolchain-notes.md.

Peaks are for all cores; the cost model gives T threads the per-core peak times the board's thread speed-up
(`thread_speedup`: expected, low, high at all cores; profiling/scaling.py), never T full cores.

The cost model's figures (`sqnxt-edge estimate`: peaks, memory bandwidth, per-layer overhead) each carry their
source in `figure_sources`: measured, derived, theoretical or assumed, said plainly. `local` measures its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["Profile", "PROFILES", "get_profile", "local_profile", "list_profiles"]


@dataclass(frozen=True)
class Profile:
    """What a board is expected to be. `None` means unknown / not fixed for this profile."""

    name: str
    description: str
    arch: str | None  # platform.machine() of a 64-bit OS: aarch64, x86_64
    cpu: str | None  # core name as cpu_info() reports it (from the ARM "CPU part" id)
    cores: int | None
    clock_ghz: float | None
    neon: bool | None = None
    dotprod: bool | None = None  # ARMv8.2 SDOT/UDOT: what makes int8 faster than fp32 on ARM
    memory_gb: tuple[float, ...] = ()
    peak_gflops_fp32: float | None = None
    peak_gops_int8: float | None = None  # int8 multiply-accumulates x 2 per second, all cores
    mem_bandwidth_gbs: float | None = None  # sustained DRAM bandwidth (read + write bytes)
    layer_overhead_us: float | None = None  # the runtime's fixed cost per layer (dispatch, thread hand-off)
    thread_speedup: tuple[float, float, float] | None = None  # (expected, low, high) speed-up at `cores` threads vs 1
    vector_lanes: int | None = None  # fp32 lanes per SIMD register (NEON 4): conv channels run in whole blocks
    cache_mb: float | None = None  # the last-level cache the cores share (weights that fit it stay there)
    figure_sources: dict = field(default_factory=dict)  # figure -> where it comes from
    sources: tuple[str, ...] = ()
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The profile as JSON-ready data (tuples as lists)."""
        d = asdict(self)
        d["memory_gb"] = list(self.memory_gb)
        d["sources"] = list(self.sources)
        return d

    def expected_features(self) -> dict[str, bool]:
        """The ISA features this profile fixes (the ones `check` compares with the board)."""
        return {k: v for k, v in (("neon", self.neon), ("dotprod", self.dotprod)) if v is not None}


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "rpi4",
            "Raspberry Pi 4 Model B (BCM2711)",
            "aarch64",
            "Cortex-A72",
            4,
            1.5,
            neon=True,
            dotprod=False,
            memory_gb=(1, 2, 4, 8),
            peak_gflops_fp32=48.0,
            peak_gops_int8=96.0,
            mem_bandwidth_gbs=5.5,
            layer_overhead_us=5.0,
            thread_speedup=(1.7, 1.4, 2.0),
            vector_lanes=4,
            cache_mb=1.0,
            figure_sources={
                "cache_mb": "specified: 1 MB L2 shared by the four A72 cores (BCM2711)",
                "thread_speedup": "published Raspberry Pi 4 measurements of small CNNs gain 1.4-2x from 4 threads "
                "(as surveyed in issue 24; the four A72 cores share ~5.5 GB/s of memory bandwidth and a 1 MB L2); "
                "not measured here",
                "peak_gflops_fp32": "derived: 4 cores x 1.5 GHz x 8 FLOP/cycle (Cortex-A72 NEON FMA)",
                "peak_gops_int8": "assumed 2x fp32: no int8 dot product on the A72, kernels widen 8-bit products to "
                "16 bits; measured Pi 4 int8 speed-ups over fp32 range 1.2x (ncnn SqueezeNet, "
                "Tencent/ncnn benchmark README) to 2.3x (XNNPACK MobileNetV2, google/XNNPACK README)",
                "mem_bandwidth_gbs": "measured: STREAM copy/scale about 5.5 GB/s on a Pi 4 "
                "(https://www.sci-pi.org.uk/bench/stream.html)",
                "layer_overhead_us": "assumed: onnxruntime's per-node dispatch plus a 4-thread pool hand-off "
                "on a 1.5 GHz core (no published figure; calibrate on the board)",
            },
            sources=(
                "https://www.raspberrypi.com/products/raspberry-pi-4-model-b/specifications/",
                "https://github.com/google/XNNPACK (Raspberry Pi 4 latencies)",
                "https://github.com/geerlingguy/top500-benchmark",
            ),
            notes="No int8 dot product: int8 is often no faster than fp32. Use 64-bit Raspberry Pi OS.",
        ),
        Profile(
            "rpi5",
            "Raspberry Pi 5 (BCM2712)",
            "aarch64",
            "Cortex-A76",
            4,
            2.4,
            neon=True,
            dotprod=True,
            memory_gb=(2, 4, 8, 16),
            peak_gflops_fp32=154.0,
            peak_gops_int8=614.0,
            mem_bandwidth_gbs=17.1,
            layer_overhead_us=3.0,
            thread_speedup=(2.5, 1.8, 3.2),
            vector_lanes=4,
            cache_mb=2.0,
            figure_sources={
                "cache_mb": "specified: 2 MB L3 shared by the four A76 cores (BCM2712)",
                "thread_speedup": "assumed: no measured 1-vs-4-thread figure for the Pi 5 in this project; its A76 "
                "cores have private 512 KB L2s, a shared 2 MB L3 and ~3x the Pi 4's bandwidth, so above the Pi 4's "
                "1.4-2x and wide; calibrate at 1 and 4 threads to fit it",
                "peak_gflops_fp32": "derived: 4 cores x 2.4 GHz x 16 FLOP/cycle (Cortex-A76, 2x 128-bit NEON FMA)",
                "peak_gops_int8": "derived: 4x fp32 (one SDOT does 16 int8 multiply-accumulates, one FMLA 4 fp32)",
                "mem_bandwidth_gbs": "theoretical: LPDDR4X-4267 x 32-bit bus (raspberrypi.com product brief); "
                "sustained STREAM is lower: calibrate on the board",
                "layer_overhead_us": "assumed: onnxruntime's per-node dispatch plus a 4-thread pool hand-off "
                "on a 2.4 GHz core (no published figure; calibrate on the board)",
            },
            sources=(
                "https://www.raspberrypi.com/products/raspberry-pi-5/",
                "https://github.com/geerlingguy/top500-benchmark",
            ),
            notes="ARMv8.2 dotprod: int8 kernels can beat fp32.",
        ),
        Profile(
            "jetson-nano",
            "NVIDIA Jetson Nano (CPU only: the GPU is not used)",
            "aarch64",
            "Cortex-A57",
            4,
            1.43,
            neon=True,
            dotprod=False,
            memory_gb=(4,),
            peak_gflops_fp32=45.8,
            peak_gops_int8=91.6,
            mem_bandwidth_gbs=25.6,
            layer_overhead_us=5.0,
            thread_speedup=(1.8, 1.4, 2.4),
            vector_lanes=4,
            cache_mb=2.0,
            figure_sources={
                "cache_mb": "specified: 2 MB L2 shared by the four A57 cores (Tegra X1)",
                "thread_speedup": "assumed: like the Pi 4 (four A57 cores sharing a 2 MB L2 and the DRAM with the "
                "GPU); no measured figure here; calibrate at 1 and 4 threads to fit it",
                "peak_gflops_fp32": "derived: 4 cores x 1.43 GHz x 8 FLOP/cycle (Cortex-A57 NEON FMA)",
                "peak_gops_int8": "assumed 2x fp32: no int8 dot product on the A57 (as for the Pi 4's A72)",
                "mem_bandwidth_gbs": "theoretical: 64-bit LPDDR4 at 1600 MHz (NVIDIA Jetson Nano module data sheet); "
                "the GPU shares it; calibrate on the board",
                "layer_overhead_us": "assumed: as the Pi 4 (similar cores and clock; calibrate on the board)",
            },
            sources=("https://developer.nvidia.com/embedded/jetson-nano",),
            notes="JetPack 4 ships Python 3.6; install a newer Python (e.g. 3.10 from deadsnakes) for the runner.",
        ),
        Profile(
            "generic-arm64",
            "Any 64-bit ARM Linux board",
            "aarch64",
            None,
            None,
            None,
            neon=True,
            dotprod=None,
            notes="Threads default to the runner's choice; the real CPU is read from the board. No cost-model figures: "
            "calibrate an estimate on the board (sqnxt-edge estimate ARTIFACT --device NAME --calibrate).",
        ),
    )
}


def local_profile() -> Profile:
    """This machine, read (never assumed) through the runner's own cpu_info()."""
    from ..runner import cpu_info

    info = cpu_info()
    feats = info.get("features", {})
    return Profile(
        "local",
        f"This machine ({info.get('model')})",
        info.get("arch"),
        info.get("model"),
        info.get("cores"),
        None,
        neon=feats.get("neon"),
        dotprod=feats.get("dotprod"),
        notes="Read from this machine with runner.cpu_info(); the cost model measures its figures when asked "
        "(sqnxt_edge.profiling.probe.local_figures).",
        extra={"vnni": feats.get("vnni"), "avx512": feats.get("avx512"), "os": info.get("os")},
    )


def list_profiles() -> list[str]:
    """Names of the built-in profiles, plus `local` (this machine, read at run time)."""
    return [*PROFILES, "local"]


def get_profile(name: str) -> Profile | None:
    """The built-in profile called `name`, or None."""
    if name == "local":
        return local_profile()
    return PROFILES.get(name)
