"""The int8 configuration as a typed value (`Int8Config`), and the warning for CPUs without int8 dot products.

Which configurations are safe on which CPUs is `targets`; which to try first, and in which order, is `choice`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = [
    "Int8Config",
    "warn_if_no_int8_dot",
    "ACTIVATION_TYPES",
    "QUANT_FORMATS",
    "CALIB_METHODS",
]

ACTIVATION_TYPES = ("uint8", "int8")
QUANT_FORMATS = ("qdq", "qoperator")
CALIB_METHODS = ("minmax", "entropy", "percentile")
_SHORT = {"uint8": "U8", "int8": "S8"}
# Symbolic layer groups `exclude` may name; resolved per model by onnx_int8.resolve_exclude.
LAYER_GROUPS = ("stem", "head")


@dataclass(frozen=True)
class Int8Config:
    """How to quantize: activation/weight types, ONNX format, per-channel weights, calibration, fp32 islands.

    `exclude` holds node names and/or the groups "stem" (the first Conv) and "head" (the classifier Conv/Gemm),
    which stay in fp32.
    """

    activation_type: str = "uint8"
    weight_type: str = "int8"
    quant_format: str = "qdq"
    per_channel: bool = True
    calib_method: str = "minmax"
    exclude: tuple[str, ...] = ()
    reduce_range: bool = False
    num_bins: int | None = None  # entropy/percentile histogram bins; None = onnx_int8's per-method default
    percentile: float = 99.999
    s2d_stem: bool = False  # the stride-2 stem as a space-to-depth + stride-1 conv (`stem_s2d`): exactly equivalent
    extra: dict = field(default_factory=dict, compare=False, hash=False)  # passed on to ORT's extra_options

    def __post_init__(self) -> None:
        checks = (
            ("activation_type", ACTIVATION_TYPES),
            ("weight_type", ACTIVATION_TYPES),
            ("quant_format", QUANT_FORMATS),
            ("calib_method", CALIB_METHODS),
        )
        for name, allowed in checks:
            value = getattr(self, name)
            if value not in allowed:
                from ..errors import ExportError

                raise ExportError(f"int8 {name} must be one of {', '.join(allowed)}, got {value!r}")
        object.__setattr__(self, "exclude", tuple(self.exclude))

    @property
    def label(self) -> str:
        """Short human name, e.g. "QDQ U8S8 per-channel" or "QOperator S8S8 per-tensor, stem fp32"."""
        fmt = "QDQ" if self.quant_format == "qdq" else "QOperator"
        text = (
            f"{fmt} {_SHORT[self.activation_type]}{_SHORT[self.weight_type]} "
            f"{'per-channel' if self.per_channel else 'per-tensor'}"
        )
        if self.reduce_range:
            text += " 7-bit"
        extras = [f"{g} fp32" for g in self.exclude if g in LAYER_GROUPS]
        others = [g for g in self.exclude if g not in LAYER_GROUPS]
        if others:
            extras.append(f"{len(others)} node(s) fp32")
        if self.calib_method != "minmax":
            extras.append(self.calib_method)
        if self.s2d_stem:
            extras.append("s2d stem")
        return text + (", " + ", ".join(extras) if extras else "")

    def to_dict(self) -> dict:
        """The configuration as JSON-ready data."""
        return {
            "label": self.label,
            "activation_type": self.activation_type,
            "weight_type": self.weight_type,
            "quant_format": self.quant_format,
            "per_channel": self.per_channel,
            "calib_method": self.calib_method,
            "exclude": list(self.exclude),
            "reduce_range": self.reduce_range,
            "s2d_stem": self.s2d_stem,
        }

    def with_(self, **changes) -> Int8Config:
        """A copy with some fields changed."""
        return replace(self, **changes)


_ARCH_FAMILY = {
    "x86_64": "x86",
    "amd64": "x86",
    "i386": "x86",
    "i686": "x86",
    "x86": "x86",
    "aarch64": "arm",
    "arm64": "arm",
    "armv7l": "arm",
    "armv8l": "arm",
}


def _cpu(cpu: dict | None) -> dict:
    if cpu is None:
        from ..runner import cpu_info

        cpu = cpu_info()
    return cpu


def _family(cpu: dict) -> str:
    arch = str(cpu.get("arch", "")).lower()
    return _ARCH_FAMILY.get(arch, "arm" if arch.startswith("arm") else "x86")


def warn_if_no_int8_dot(cpu: dict | None = None) -> str | None:
    """One line when the CPU lacks int8 dot-product instructions (int8 may then be slower than fp32), else None."""
    cpu = _cpu(cpu)
    if cpu.get("int8_dot"):
        return None
    family = _family(cpu)
    missing = "VNNI (AVX512-VNNI/AVX-VNNI)" if family == "x86" else "ARMv8.2 dot-product instructions (asimddp)"
    name = cpu.get("model") or cpu.get("arch") or "this CPU"
    return f"warning: {name} has no {missing}; int8 may run slower than fp32 here, measure before deploying"
