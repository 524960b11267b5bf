"""Parity: run a written artifact through the team's runner (`runner.open_model`, the same code bench and eval
use) on real images and compare its logits with PyTorch's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data import load_dataset, preprocess, resize_uint8
from ..errors import DataError, ExportError
from ..runner import RunnerError, open_model, top_classes
from .config import TOLERANCES

__all__ = ["VerifySet", "verify_images", "reference_logits", "predict", "compare"]


@dataclass
class VerifySet:
    """uint8 NHWC images at the model's input size, their labels when known, and where they came from."""

    images: np.ndarray
    labels: np.ndarray | None
    source: str


def verify_images(ckpt, n: int, seed: int = 0, data_dir: str | None = None) -> VerifySet:
    """The checkpoint dataset's test split (a seeded sample of n), else n seeded random images."""
    if ckpt.dataset:
        try:
            data = load_dataset(ckpt.dataset, "test", data_dir or ckpt.data_dir, channels=ckpt.in_channels)
        except DataError:
            data = None
        if data is not None and data.channels == ckpt.in_channels:
            data = data.sample(n, seed)
            return VerifySet(resize_uint8(data.images, ckpt.input_size), data.labels, f"{ckpt.dataset}/test")
    rng = np.random.default_rng(seed)
    size = ckpt.input_size
    images = rng.integers(0, 256, size=(min(n, 64), size, size, ckpt.in_channels), dtype=np.uint8)
    return VerifySet(images, None, "random")


@torch.no_grad()
def reference_logits(model: torch.nn.Module, images: np.ndarray, mean, std, batch: int = 64) -> np.ndarray:
    """PyTorch float32 logits for uint8 NHWC images already at the input size."""
    size = images.shape[1]
    outs = [
        model(preprocess(images[i : i + batch], size, mean, std)).float().numpy() for i in range(0, len(images), batch)
    ]
    return np.concatenate(outs)


def _criteria(precision: str, ref: np.ndarray) -> tuple[float | None, float | None]:
    tol = TOLERANCES[precision]
    max_abs = tol["max_abs"]
    if max_abs is not None and tol["rel_to_max_logit"]:
        max_abs = max(max_abs, tol["rel_to_max_logit"] * float(np.abs(ref).max()))
    return max_abs, tol["min_agreement"]


def predict(path, images: np.ndarray) -> tuple[np.ndarray, str]:
    """This machine's logits for `images` through the runner, and the runtime that made them."""
    try:
        model = open_model(str(path))
        return model.predict(images, batch=64), f"{model.runtime} {model.runtime_version}"
    except RunnerError as exc:
        raise ExportError(f"verification could not run {path.name}: {exc}") from None


def compare(got: np.ndarray, ref: np.ndarray, precision: str, name: str = "artifact") -> dict:
    """Max/mean abs logit difference and top-1 agreement of `got` with PyTorch's `ref`, and whether the precision's
    criteria hold (the same on this machine and on a board)."""
    if got.shape != ref.shape:
        raise ExportError(f"{name} returns logits of shape {got.shape}, PyTorch {ref.shape}")
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    agreement = float(np.mean(top_classes(got) == top_classes(ref)))
    max_abs, min_agreement = _criteria(precision, ref)
    reasons = []
    if max_abs is not None and diff.max() > max_abs:
        reasons.append(f"max abs logit diff {diff.max():.3g} > {max_abs:.3g}")
    if min_agreement is not None and agreement < min_agreement:
        reasons.append(f"top-1 agreement {agreement:.1%} < {min_agreement:.0%}")
    decisive = None
    if TOLERANCES[precision]["decisive_agreement"] and max_abs is not None:
        top2 = np.sort(ref, axis=1)[:, -2:] if ref.shape[1] > 1 else np.concatenate([ref, ref - np.inf], 1)
        mask = (top2[:, 1] - top2[:, 0]) > 2 * max_abs
        flips = int(np.sum(top_classes(got[mask]) != top_classes(ref[mask])))
        decisive = {"images": int(mask.sum()), "flips": flips}
        if flips:
            reasons.append(f"top-1 differs on {flips} of {int(mask.sum())} images with a clear PyTorch margin")
    return {
        "n": len(got),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "max_abs_logit": float(np.abs(ref).max()),
        "top1_agreement": agreement,
        "decisive": decisive,
        "tolerance": {"max_abs": max_abs, "min_agreement": min_agreement},
        "passed": not reasons,
        "failure": "; ".join(reasons) or None,
    }
