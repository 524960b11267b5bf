"""The per-layer cost model: what a layer should take on a machine, from the graph and a few hardware figures.

    time(layer) = 2 x MACs' / (peak x efficiency[kind])     compute, at the precision's peak (MACs': channels
                                                              rounded up to whole vector blocks, per group)
                + bytes moved / (bandwidth x memory efficiency)   activations read + written, weights read
                                                              (unless all the weights fit the last-level cache)
                + epilogue x output bytes / bandwidth         a conv's work per output (bias, activation,
                                                              requantization, write-back), whatever its depth
                + overhead                                    the runtime's fixed cost per layer
    time(model) = sum over layers x (1 + other)              `other`: the runtime's own nodes (layout reorders,
                                                              quantize / dequantize) and the session, as a share

The terms are added, not maxed (a roofline would take the larger): on a CPU the phases of small kernels overlap
poorly, and the sum is linear in the factors, so one measured profile fits them by non-negative least squares
(`fit`). The epilogue term is why a narrow layer (few input channels: little work per output) runs below peak: without
it, the int8 estimates of the 1.5x/2.0x variants at 32 px came out 20-40% high (benchmarks/estimate/).
A grouped conv runs as one small GEMM per group: where no calibration measured the grouped kind, it is costed as its
kernel kind with each group's channels rounded up to the vector blocks (what makes a 4-channel group slow), rather
than as the reference machine's grouped figure scaled. `fit_totals` fits the same factors to end-to-end times only
(several models, no per-layer profile), which is how benchmarks/estimate/offline.py scores them model by model.
Uncalibrated, the factors are the reference ones below: fitted on the project's x86 reference machine, so on an ARM
board they are a prior, not a measurement; the estimate says which basis it stands on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .layers import BYTES, COMPUTE_KINDS, Layer, LayerTable

__all__ = ["Hardware", "Factors", "LayerCost", "predict", "fit", "fit_totals", "REFERENCE", "REFERENCE_SOURCE"]

REFERENCE_SOURCE = (
    "reference factors fitted on the project's x86 machine (1 thread; 1.0-SqNxt-23, 1.0-G-SqNxt-23 and "
    "SqueezeNet-1.1 at 227 px; benchmarks/estimate/reference.json)"
)
# The fit recorded in benchmarks/estimate/reference.json, rounded (a test checks they agree). Efficiencies are
# relative to the peak figure the fit used: there, a measured 512x512 MatMul, which onnxruntime's convolution
# kernels beat (hence values above 1). "other" (a conv kind the zoo lacks) takes the 1x1 value.
REFERENCE: dict[str, dict] = {
    "fp32": {
        "efficiency": {
            "stem": 0.862,
            "1x1": 1.065,
            "3x1/1x3": 0.980,
            "3x3": 0.996,
            "grouped": 0.910,
            "fc": 0.055,
            "other": 1.065,
        },
        "memory_efficiency": 2.989,
        "overhead_us": 0.98,
        "other": 0.0147,
        "epilogue": 0.000,
    },
    "int8": {
        "efficiency": {
            "stem": 0.579,
            "1x1": 0.985,
            "3x1/1x3": 0.712,
            "3x3": 1.039,
            "grouped": 0.282,
            "fc": 0.031,
            "other": 0.985,
        },
        "memory_efficiency": 0.646,
        "overhead_us": 0.48,
        "other": 0.0197,
        "epilogue": 1.761,
    },
}


@dataclass
class Hardware:
    """The figures an estimate stands on, each with its source, for `threads` threads."""

    name: str
    threads: int
    peak_gflops_fp32: float | None
    peak_gops_int8: float | None
    mem_bandwidth_gbs: float | None
    layer_overhead_us: float | None
    sources: dict[str, str] = field(default_factory=dict)
    vector_lanes: int | None = None  # fp32 lanes per SIMD register (AVX-512 16, AVX2 8, NEON 4); None: no rounding
    cache_mb: float | None = None  # last-level cache: a model whose weights fit stops paying DRAM for them

    def weights_cached(self, table: LayerTable, precision: str) -> bool:
        """Whether all the model's weights fit in the last-level cache: at batch 1 the same weights are read every
        inference, so once they fit they come from the cache and cost no memory time of their own."""
        weight_bytes = sum(layer.weights for layer in table.layers) * BYTES.get(precision, BYTES["fp32"])[1]
        return self.cache_mb is not None and self.cache_mb > 0 and weight_bytes <= self.cache_mb * 2**20

    def blocks(self, precision: str) -> tuple[int, int]:
        """(input-channel block, output-channel block) a conv kernel computes whole: output channels fill the fp32
        lanes; int8 dot products (VNNI, SDOT) take input channels 4 at a time."""
        if not self.vector_lanes:
            return 1, 1
        return (4 if precision == "int8" else 1), int(self.vector_lanes)

    def peak(self, precision: str) -> float | None:
        """GOP/s at `precision` (fp16 runs at the fp32 peak: CPU runtimes compute it in fp32)."""
        return self.peak_gops_int8 if precision == "int8" else self.peak_gflops_fp32

    def missing(self, precision: str) -> list[str]:
        """The figures an estimate at `precision` needs that this hardware lacks."""
        need = {
            "peak_gops_int8" if precision == "int8" else "peak_gflops_fp32": self.peak(precision),
            "mem_bandwidth_gbs": self.mem_bandwidth_gbs,
        }
        return [k for k, v in need.items() if not v]

    def to_dict(self) -> dict:
        """The figures and their sources as JSON-ready data."""
        return asdict(self)


@dataclass
class Factors:
    """Efficiency per layer kind (fraction of peak), memory efficiency (fraction of bandwidth), per-layer overhead
    (us; None: the hardware's figure) and the runtime's own share; `basis` says where they come from."""

    efficiency: dict[str, float]
    memory_efficiency: float
    overhead_us: float | None
    other: float
    basis: str
    fitted: tuple[str, ...] = ()  # the kinds a calibration measured (the others fall back, scaled)
    epilogue: float = 0.0  # output bytes' worth of bandwidth time per compute layer's output

    @classmethod
    def reference(cls, precision: str) -> Factors:
        """The reference factors for a precision, fitted on the project's x86 machine."""
        ref = REFERENCE["int8" if precision == "int8" else "fp32"]
        return cls(
            dict(ref["efficiency"]),
            ref["memory_efficiency"],
            None,
            ref["other"],
            "profile only (uncalibrated): " + REFERENCE_SOURCE,
            epilogue=ref.get("epilogue", 0.0),
        )

    def knows(self, kind: str) -> bool:
        """Whether `kind` has an efficiency of its own here (fitted, or a reference value)."""
        return kind in self.efficiency and (not self.fitted or kind in self.fitted)

    def kind_of(self, layer: Layer) -> str:
        """The efficiency a layer runs at: a grouped conv the factors never measured runs as its kernel kind."""
        if layer.kind == "grouped" and layer.base_kind and not self.knows("grouped"):
            return layer.base_kind
        return layer.kind

    def eff(self, kind: str, precision: str) -> float:
        """The efficiency of `kind`; a kind the calibration never saw gets its reference value scaled by how the
        calibrated kinds compare with theirs."""
        if kind in self.efficiency and (not self.fitted or kind in self.fitted):
            return max(self.efficiency[kind], 1e-6)
        ref = Factors.reference(precision).efficiency
        ratios = [self.efficiency[k] / ref[k] for k in self.fitted if k in ref and k in self.efficiency]
        return max(ref.get(kind, ref["other"]) * (float(np.median(ratios)) if ratios else 1.0), 1e-6)

    def to_dict(self) -> dict:
        """The factors as JSON-ready data."""
        d = asdict(self)
        d["fitted"] = list(self.fitted)
        return d


@dataclass
class LayerCost:
    """One layer's estimated time, split into compute, memory and per-layer overhead."""

    layer: Layer
    compute_us: float  # MACs at the kind's efficiency, plus the epilogue per output
    memory_us: float
    overhead_us: float

    @property
    def us(self) -> float:
        """The layer's estimated time: the sum of its terms."""
        return self.compute_us + self.memory_us + self.overhead_us


def _terms(layer: Layer, hw: Hardware, precision: str, cached: bool = False) -> tuple[float, float, float]:
    """(compute us at 100% of peak, memory us at 100% of bandwidth, a compute layer's output bytes / bandwidth);
    `cached`: the model's weights stay in the cache (only activations move)."""
    peak, bw = hw.peak(precision) or 0.0, hw.mem_bandwidth_gbs or 0.0
    compute = 2 * layer.padded_macs(*hw.blocks(precision)) / (peak * 1e3) if layer.macs and peak else 0.0
    moved = layer.bytes(precision) - (layer.weights * BYTES.get(precision, BYTES["fp32"])[1] if cached else 0)
    memory = moved / (bw * 1e3) if bw else 0.0
    output = layer.out_elems * BYTES.get(precision, BYTES["fp32"])[0] / (bw * 1e3) if layer.macs and bw else 0.0
    return compute, memory, output


def predict(table: LayerTable, hw: Hardware, factors: Factors, precision: str) -> tuple[list[LayerCost], float]:
    """Every layer's predicted cost, and the model's total in us (layers x (1 + other))."""
    overhead = factors.overhead_us if factors.overhead_us is not None else (hw.layer_overhead_us or 0.0)
    costs, cached = [], hw.weights_cached(table, precision)
    for layer in table.layers:
        compute, memory, output = _terms(layer, hw, precision, cached)
        costs.append(
            LayerCost(
                layer,
                (compute / factors.eff(factors.kind_of(layer), precision) if compute else 0.0)
                + factors.epilogue * output,
                memory / max(factors.memory_efficiency, 1e-6),
                overhead,
            )
        )
    return costs, sum(c.us for c in costs) * (1.0 + factors.other)


def _nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls  # scikit-learn's own dependency

    return nnls(a, b)[0]


def fit(
    samples: list[tuple[LayerTable, dict[str, float], float]],
    hw: Hardware,
    precision: str,
    basis: str,
    overhead_us: float | None = None,
) -> Factors:
    """Factors from measured profiles: each sample is (layer table, per-layer times in us by layer name, time of the
    runtime's own nodes in us). Least squares on relative errors, so small layers count as much as big ones.

    `overhead_us`: the per-layer overhead as measured (the probe's per-node cost); otherwise it is fitted too. Fitted,
    it soaks up what the other terms miss at the calibration size and over-charges small layers elsewhere."""
    kinds = [k for k in COMPUTE_KINDS if any(l.kind == k and l.macs for t, _, _ in samples for l in t.layers)]
    rows, target, layers_us, other_us = [], [], 0.0, 0.0
    for table, measured_us, other in samples:
        other_us += other
        cached = hw.weights_cached(table, precision)
        for layer in table.layers:
            us = measured_us.get(layer.name, 0.0)
            if us <= 0:
                continue
            layers_us += us
            compute, memory, output = _terms(layer, hw, precision, cached)
            row = [compute if layer.kind == k else 0.0 for k in kinds] + [memory, output, 1.0]
            rows.append([v / us for v in row])
            target.append(1.0 - (overhead_us or 0.0) / us)
    if len(rows) < len(kinds) + 3:
        raise ValueError(f"{len(rows)} measured layers cannot fit {len(kinds) + 3} factors")
    a = np.asarray(rows)
    x = [float(v) for v in _nnls(a if overhead_us is None else a[:, :-1], np.asarray(target))]
    if overhead_us is not None:
        x.append(float(overhead_us))
    ref = Factors.reference(precision)
    eff = {k: (1.0 / x[i] if x[i] > 1e-9 else ref.efficiency[k]) for i, k in enumerate(kinds)}
    mem_eff = 1.0 / x[len(kinds)] if x[len(kinds)] > 1e-9 else 1e6  # never limited by memory in this fit
    return Factors(
        eff,
        mem_eff,
        x[-1],
        other_us / layers_us if layers_us else 0.0,
        basis,
        tuple(k for i, k in enumerate(kinds) if x[i] > 1e-9),
        epilogue=x[len(kinds) + 1],
    )


def fit_totals(
    samples: list[tuple[LayerTable, float]],
    hw: Hardware,
    precision: str,
    basis: str,
    overhead_us: float,
    prior: Factors | None = None,
    strength: float = 0.1,
) -> Factors:
    """Factors from end-to-end times only: each sample is (layer table, measured total in us), one row per model
    (relative error, so small models count as much as big ones). The layers' terms are summed per model; the runtime's
    own share (`other`) cannot be told apart from the layers here and stays 0.

    Whole-model times of a family of similar networks barely tell the kinds apart (their layer mixes move together),
    so unconstrained least squares trades one kind against another (a kind at zero cost, another at a fraction of its
    peak). The fit is pulled towards `prior` (a per-layer calibration, or the reference factors): each factor's
    relative departure from it costs `strength` as much as one model's relative error."""
    prior = prior or Factors.reference(precision)
    kinds = [k for k in COMPUTE_KINDS if any(x.kind == k and x.macs for t, _ in samples for x in t.layers)]
    rows, target = [], []
    for table, total_us in samples:
        row, cached = np.zeros(len(kinds) + 2), hw.weights_cached(table, precision)
        for layer in table.layers:
            compute, memory, output = _terms(layer, hw, precision, cached)
            if layer.kind in kinds and compute:
                row[kinds.index(layer.kind)] += compute
            row[len(kinds)] += memory
            row[len(kinds) + 1] += output
        rows.append(row / total_us)
        target.append(1.0 - overhead_us * len(table.layers) / total_us)
    if len(rows) < 3:
        raise ValueError(f"{len(rows)} measured models cannot fit end-to-end factors (3 or more needed)")
    centre = [1.0 / prior.eff(k, precision) for k in kinds]
    centre += [1.0 / max(prior.memory_efficiency, 1e-6), prior.epilogue]
    scale = [c if c > 1e-6 else 1.0 for c in centre]
    weight = np.sqrt(strength)
    a = np.vstack([np.asarray(rows), np.diag([weight / s for s in scale])])
    b = np.concatenate([np.asarray(target), [weight * c / s for c, s in zip(centre, scale)]])
    x = [float(v) for v in _nnls(a, b)]
    eff = {k: (1.0 / x[i] if x[i] > 1e-9 else prior.eff(k, precision)) for i, k in enumerate(kinds)}
    return Factors(
        eff,
        1.0 / x[len(kinds)] if x[len(kinds)] > 1e-9 else 1e6,
        float(overhead_us),
        0.0,
        basis,
        tuple(k for i, k in enumerate(kinds) if x[i] > 1e-9),
        epilogue=x[len(kinds) + 1],
    )
