"""`runner.pyz --predict K --data IMAGES.npz ARTIFACT...`: the top-K classes of each image, on the machine that runs
the runner (this one or a board).

The harness decodes the image files (Pillow, on its own machine: a board has numpy and its runtimes, often no
Pillow) and ships their raw pixels in one .npz (`names` + `image_<i>`, uint8 HW or HWC at their own size). The
runner cuts, converts and resizes each image itself with the pixel rules (`pixels.fit`) and normalises it from the
artifact's metadata (`Model.prepare`): a board feeds its model what this machine would. Classes are ranked by the
project's one top-1 rule (`result.top_classes`: ties go to the lowest index).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backends import runtimes_for
from .contract import RUNNER_VERSION, RunnerError, describe, first_line
from .machine import environment
from .measuring import Settings
from .model import open_model
from .pixels import fit
from .result import top_classes

__all__ = ["PredictSettings", "load_images", "pack_images", "predict_artifact", "predict_report"]


@dataclass(frozen=True)
class PredictSettings(Settings):
    """What `Target.run` hands a board for predictions: `data` is the .npz of decoded images, `top_k` how many
    classes per image. Only `runtime`, `threads`, `data` and `timeout` of `Settings` apply; nothing is timed."""

    top_k: int = 5
    latency: bool = False

    def check(self) -> PredictSettings:
        """Raise RunnerError for values no run could honour; returns self."""
        if self.top_k < 1:
            raise RunnerError(f"--predict must be >= 1, got {self.top_k}")
        if self.threads is not None and self.threads < 1:
            raise RunnerError(f"--threads must be >= 1, got {self.threads}")
        return self

    def to_argv(self) -> list[str]:
        """The runner command line for these predictions (what a board receives)."""
        argv = ["--predict", self.top_k, "--runtime", self.runtime]
        for flag, value in (("--threads", self.threads), ("--data", self.data), ("--timeout", self.timeout)):
            argv += [flag, value] if value else []
        return [str(a) for a in argv]


def pack_images(images: dict[str, np.ndarray]) -> dict[str, Any]:
    """{name: decoded uint8 image} -> the arrays of the .npz the runner reads (`names`, `image_<i>`)."""
    out: dict[str, Any] = {"names": np.array(list(images), dtype=str)}
    out.update({f"image_{i}": np.asarray(a, dtype=np.uint8) for i, a in enumerate(images.values())})
    return out


def load_images(path: str) -> list[tuple[str, np.ndarray]]:
    """(name, decoded uint8 image) pairs from the .npz a harness shipped."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "names" not in data.files:
                raise RunnerError(f"{os.path.basename(path)} has no 'names' (has: {', '.join(data.files)})")
            names = [str(n) for n in data["names"]]
            return [(name, data[f"image_{i}"]) for i, name in enumerate(names)]
    except (OSError, ValueError, KeyError) as exc:
        raise RunnerError(f"cannot read images file {path}: {first_line(exc)}") from None


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict_artifact(path: str, images: list[tuple[str, np.ndarray]], s: PredictSettings) -> dict:
    """One artifact's top-K for every image (an image that cannot be used gets its own `error`)."""
    model = open_model(path, runtime=runtimes_for(path, s.runtime)[0], threads=s.threads)
    size, channels = model.input_size, model.channels
    classes = model.meta.get("classes") or []
    rows: list[dict] = []
    ready: list[np.ndarray] = []
    for name, image in images:
        try:
            ready.append(fit(image, size, channels))
            rows.append({"image": name})
        except ValueError as exc:
            rows.append({"image": name, "error": str(exc)})
    ok = [r for r in rows if "error" not in r]
    if ready:
        logits = model.predict(np.stack(ready), batch=s.batch if s.batch > 1 else 16)
        probs = _softmax(logits)
        best = top_classes(logits, min(s.top_k, logits.shape[1])).reshape(len(ready), -1)
        for row, lg, pr, idx in zip(ok, logits, probs, best):
            row["top"] = [
                {
                    "index": int(i),
                    "label": str(classes[i]) if i < len(classes) else str(int(i)),
                    "prob": round(float(pr[i]), 6),
                    "logit": float(lg[i]),
                }
                for i in idx
            ]
    result = describe(path, model.runtime)
    result.update(
        runtime_version=model.runtime_version,
        precision=model.precision,
        input_size=size,
        channels=channels,
        threads=s.threads,
        predictions=rows,
    )
    return result


def predict_report(artifacts: list, s: PredictSettings) -> dict:
    """Every artifact's predictions for the images in `s.data` (one artifact's failure never stops the others)."""
    s = s.check()
    if not s.data:
        raise RunnerError("--predict needs --data IMAGES.npz")
    images = load_images(s.data)
    results = []
    for path in artifacts:
        try:
            if not os.path.isfile(path):
                raise RunnerError(f"artifact not found: {path}")
            results.append(predict_artifact(str(path), images, s))
        except RunnerError as exc:
            results.append({"artifact": str(path), "runtime": None, "error": str(exc)})
        except Exception as exc:  # a runtime's own failure on this input: one line, the next artifact still runs
            results.append({"artifact": str(path), "runtime": None, "error": first_line(exc)})
    return {"runner_version": RUNNER_VERSION, "env": environment(), "results": results}
