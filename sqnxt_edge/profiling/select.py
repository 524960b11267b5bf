"""`sqnxt-edge select`: the zoo variants that fit a latency budget on a device, ranked by accuracy where it is known.

Accuracy is never invented: the papers' published figures (with their source), the seed re-implementation's for
small inputs, or the top-1 a user's own checkpoint measured; everything else is "unknown". Latency is the cost
model's estimate (calibrated when the device has a stored calibration), or the measurement itself for the model a
calibration was measured on. An estimate fits the budget only if the upper end of its range does: a variant whose
estimate is under the budget but whose range is not may miss it on the real board.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from ..errors import SqnxtError, UnknownModelError, first_line
from ..progress import progress_bar
from .estimate import Estimate, estimate

__all__ = ["Candidate", "Skipped", "Selection", "select", "ACCURACY", "dataset_for"]

PAPER = "Gholami et al., SqueezeNext (CVPRW 2018, arXiv 1803.10615), ImageNet top-1 / top-5"
TORCHVISION = "torchvision's SqueezeNet{} IMAGENET1K_V1 weights, ImageNet-1K acc@1 / acc@5 (pytorch.org/vision)"
SEED = "luuuyi/SqueezeNext.PyTorch README, validation top-1 (the re-implementation, not the paper)"
# (model, dataset) -> (top-1 %, top-5 % or None, source)
ACCURACY: dict[tuple[str, str], tuple[float, float | None, str]] = {
    ("1.0-SqNxt-23", "imagenet"): (59.05, 82.60, PAPER),
    ("1.0-SqNxt-23v5", "imagenet"): (59.24, 82.41, PAPER),
    ("2.0-SqNxt-23", "imagenet"): (67.18, 88.17, PAPER),
    ("2.0-SqNxt-23v5", "imagenet"): (67.44, 88.20, PAPER),
    ("SqueezeNet-1.0", "imagenet"): (58.092, 80.42, TORCHVISION.format("1_0")),
    ("SqueezeNet-1.1", "imagenet"): (58.178, 80.624, TORCHVISION.format("1_1")),
    **{
        (m, d): (top1, None, SEED)
        for m, scores in {
            "1.0-SqNxt-23": (91.9, 69.3, 53.5),
            "2.0-SqNxt-23": (93.1, 73.1, 56.7),
            "1.0-SqNxt-23v5": (91.9, 70.1, 52.7),
            "2.0-SqNxt-23v5": (93.1, 73.2, 56.7),
        }.items()
        for d, top1 in zip(("cifar10", "cifar100", "tiny-imagenet"), scores)
    },
}
PRECISION_CHOICES = ("fp32", "int8", "any")


def dataset_for(input_size: int) -> str:
    """The dataset whose published accuracy applies at an input size (the zoo's stems follow the same rule)."""
    return "imagenet" if input_size >= 128 else ("tiny-imagenet" if input_size >= 64 else "cifar10")


@dataclass
class Candidate:
    """A zoo variant at a precision: its latency (and where it comes from), size and accuracy."""

    model: str
    precision: str
    latency_ms: float
    latency_source: str  # "measured", "calibrated estimate" or "estimate (profile only)"
    measured: bool
    fits: bool  # the upper end of the range within the budget (the measurement, where measured)
    params: int
    size_mb: float  # weights at the precision's width (what an exported file is close to)
    macs: int
    top1: float | None
    top5: float | None
    accuracy_source: str  # or "unknown"
    checkpoint: str | None = None
    latency_low_ms: float = 0.0  # the estimate's range (equal to latency_ms when measured)
    latency_high_ms: float = 0.0


@dataclass
class Skipped:
    """A variant that does not build at the size asked (a fixed-size stem, a feature map that shrinks to nothing)."""

    model: str
    reason: str  # one line


@dataclass
class Selection:
    """The variants considered for a latency budget on a device, ranked."""

    device: str
    budget_ms: float
    input_size: int
    dataset: str
    candidates: list[Candidate]  # every variant that builds, fitting ones first, ranked
    basis: list[str] = field(default_factory=list)  # what the estimates stand on
    skipped: list[Skipped] = field(default_factory=list)  # said, never dropped silently

    @property
    def fitting(self) -> list[Candidate]:
        """The candidates within the budget."""
        return [c for c in self.candidates if c.fits]

    def to_dict(self) -> dict:
        """The selection as JSON-ready data, with the fitting names."""
        return {**asdict(self), "fitting": [c.model + " " + c.precision for c in self.fitting]}


def _checkpoint_scores(paths: list[str | os.PathLike], input_size: int) -> dict[str, tuple[float, str, str]]:
    """{model: (top-1 %, dataset, checkpoint path)} of the user's checkpoints at `input_size` (the best per model)."""
    from ..checkpoint import load_checkpoint

    found: dict[str, tuple[float, str, str]] = {}
    for path in paths:
        ckpt = load_checkpoint(path)
        top1 = ckpt.metrics.get("best_top1", ckpt.metrics.get("test_top1"))
        if top1 is None or int(ckpt.input_size) != int(input_size):
            continue
        top1 = float(top1) * (100.0 if float(top1) <= 1.0 else 1.0)
        if ckpt.model_name not in found or top1 > found[ckpt.model_name][0]:
            found[ckpt.model_name] = (top1, str(ckpt.dataset), str(path))
    return found


def _candidate(est: Estimate, budget_ms: float, accuracy: tuple, params: int) -> Candidate:
    top1, top5, source, ckpt = accuracy
    measured = est.measured_ms is not None
    latency = est.measured_ms if est.measured_ms is not None else est.ms
    low, high = (latency, latency) if measured else (est.low_ms or latency, est.high_ms or latency)
    how = "measured" if measured else ("calibrated estimate" if est.calibrated else "estimate (profile only)")
    width = 1 if est.precision == "int8" else (2 if est.precision == "fp16" else 4)
    return Candidate(
        est.model,
        est.precision,
        latency,
        how,
        measured,
        high <= budget_ms,
        params,
        params * width / 2**20,
        est.macs,
        top1,
        top5,
        source,
        ckpt,
        low,
        high,
    )


def select(
    device: str,
    budget_ms: float,
    precision: str = "any",
    input_size: int = 227,
    threads: int | None = None,
    checkpoints: Sequence[str | os.PathLike] = (),
    dataset: str | None = None,
    models: list[str] | None = None,
    devices_file=None,
    progress: bool = True,
) -> Selection:
    """Every zoo variant (or `models`) at `input_size` on `device`, fitting `budget_ms` first, by accuracy."""
    from ..devices import get_calibration
    from ..models import list_models
    from .estimate import board_for
    from .layers import model_layers

    if budget_ms <= 0:
        raise SqnxtError(f"--budget-ms must be above 0, got {budget_ms}")
    if precision not in PRECISION_CHOICES:
        raise SqnxtError(f"--precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
    dataset = dataset or dataset_for(input_size)
    precisions = ["fp32", "int8"] if precision == "any" else [precision]
    names = models or list_models()
    mine = _checkpoint_scores(list(checkpoints), input_size)
    calib_name = board_for(device, threads, devices_file).calib_name  # no figures needed (local's are measured)
    measured = {p: get_calibration(calib_name, p, devices_file) if calib_name else None for p in precisions}
    classes = (
        1000 if dataset == "imagenet" else (200 if dataset == "tiny-imagenet" else 100 if dataset == "cifar100" else 10)
    )
    out, bases, skipped = [], set(), []
    with progress_bar(f"estimating on {device}", len(names) * len(precisions), progress) as advance:
        for name in names:
            try:
                table = model_layers(name, input_size, classes)
            except UnknownModelError:
                raise
            except SqnxtError as exc:  # a stem made for other sizes: the builder says which
                skipped.append(Skipped(name, first_line(exc)))
                advance(len(precisions), f"{name} skipped")
                continue
            except RuntimeError as exc:  # torch: a feature map shrinks to nothing ("Output size is too small")
                skipped.append(Skipped(name, f"does not build at {input_size} px: {first_line(exc)}"))
                advance(len(precisions), f"{name} skipped")
                continue
            acc: tuple[float | None, float | None, str, str | None]
            if name in mine:
                top1, ds, path = mine[name]
                acc = (top1, None, f"your checkpoint ({ds})", path)
            else:
                acc = (*ACCURACY.get((table.model, dataset), (None, None, "unknown")), None)
            for p in precisions:
                est = estimate(name, device, input_size, p, threads, classes, devices_file)
                cal = measured.get(p)
                if cal and cal.get("model") == table.model and int(cal.get("input_size", 0)) == input_size:
                    est.measured_ms = float(cal["measured_ms"])
                out.append(_candidate(est, budget_ms, acc, table.params))
                bases.add(est.basis)
                advance(1, f"{name} {p}")
    out.sort(key=lambda c: (not c.fits, c.top1 is None, -(c.top1 or 0.0), c.latency_high_ms))
    return Selection(device, budget_ms, input_size, dataset, out, sorted(bases), skipped)
