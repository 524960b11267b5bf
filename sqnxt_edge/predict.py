"""`predict(artifact, images)`: what an exported model (or a checkpoint) says about image files, here or on a board.

The files are decoded here with Pillow (a board may have no Pillow: it has numpy and its runtimes) and shipped as
their raw pixels in one .npz; the runner, on this machine or the board (`devices.Target`), cuts, resizes and
normalises each image itself with the one pixel rule set (`runner.pixels`, the artifact's metadata) and ranks the
classes by the one top-1 rule (ties to the lowest index). A file that cannot be read is reported on its own line;
the others still run.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import runner
from .errors import CheckpointError, DataError, DeviceError

__all__ = ["Prediction", "PredictResult", "predict", "collect_images"]


@dataclass
class Prediction:
    """One image: its top classes ({index, label, prob, logit}, best first) or why it could not be used."""

    image: str
    top: list[dict] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str | None:
        """The top-1 class name (None for an image that failed)."""
        return self.top[0]["label"] if self.top else None


@dataclass
class PredictResult:
    """Every image's prediction by one artifact, and where and with what it ran."""

    artifact: str
    device: str
    runtime: str | None
    runtime_version: str | None
    precision: str | None
    input_size: int | None
    predictions: list[Prediction]
    emulated: bool = False

    @property
    def predicted(self) -> int:
        """How many images got a prediction."""
        return sum(1 for p in self.predictions if p.error is None)

    @property
    def failed(self) -> list[Prediction]:
        """The images that could not be used."""
        return [p for p in self.predictions if p.error is not None]

    def to_dict(self) -> dict:
        """JSON-ready data."""
        out = asdict(self)
        out["predictions"] = [{k: v for k, v in asdict(p).items() if v is not None} for p in self.predictions]
        return out


def collect_images(inputs: Sequence[str | Path]) -> list[Path]:
    """The image files named or found directly in the folders named (known image suffixes), in the order given.
    DataError when a path does not exist or nothing is found."""
    from .data.images import list_images

    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files += list_images(item)
        elif item.is_file():
            files.append(item)
        else:
            raise DataError(f"no such image file or folder: {item}")
    if not files:
        raise DataError(f"no images (.png, .jpg, .jpeg, .bmp, ...) in {', '.join(map(str, inputs)) or 'nothing'}")
    return files


def _decode(files: list[Path]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """{name: RGB uint8 image at its own size} and {name: why it could not be read}."""
    from .data.images import read_image

    images: dict[str, np.ndarray] = {}
    bad: dict[str, str] = {}
    for path in files:
        name = str(path)
        try:
            images[name] = read_image(path, None)
        except DataError as exc:
            bad[name] = str(exc).replace(f"cannot read image {path}: ", "cannot read it: ")
    return images, bad


def predict(
    artifact: str | Path,
    inputs: Sequence[str | Path],
    device: str = "local",
    top_k: int = 5,
    runtime: str = "auto",
    threads: int | None = None,
    devices_file: str | Path | None = None,
) -> PredictResult:
    """The top-`top_k` classes of each image file (or of the images directly in each folder) by `artifact` (.onnx,
    .ort, .tflite, or a checkpoint on this machine), run by the runner on `device` ("local" or a registered board)."""
    from .devices import Target
    from .runner.predict import pack_images

    path = Path(artifact)
    if not path.is_file():
        raise CheckpointError(f"artifact not found: {path}")
    fmt = runner.SUFFIXES.get(path.suffix.lower(), (None,))[0]
    if fmt is None:
        raise CheckpointError(f"{path.name}: cannot predict with {path.suffix or 'a file without suffix'}")
    if top_k < 1:
        raise DataError(f"--top-k must be >= 1, got {top_k}")
    target = Target(device, devices_file)
    env = None
    if fmt == "pytorch":
        if not target.is_local:
            raise CheckpointError(f"{path.name}: checkpoints predict on this machine; export it to predict on {device}")
        from .bench.local import plugin_env

        env, runtime = plugin_env(), "torch"
    assert target.is_local or target.device is not None  # an unknown board fails before any decoding
    files = collect_images(inputs)
    images, bad = _decode(files)
    rows: dict[str, Prediction] = {str(p): Prediction(str(p), error=bad.get(str(p))) for p in files}
    result = PredictResult(str(path), device, None, None, None, None, list(rows.values()))
    if not images:
        return result
    settings = runner.PredictSettings(runtime=runtime, threads=threads, top_k=top_k)
    with tempfile.TemporaryDirectory(prefix="sqnxt-predict-") as tmp:
        npz = Path(tmp) / "images.npz"
        np.savez(npz, **pack_images(images))
        report = target.run([path], settings, npz, env=env)
    got = (report.get("results") or [{}])[0]
    if "error" in got or "predictions" not in got:
        where = "" if target.is_local else f" on {device}"
        raise DeviceError(f"{path.name}{where}: {got.get('error', 'the runner returned no predictions')}")
    for one in got["predictions"]:
        row = rows.get(str(one.get("image")))
        if row is not None:
            row.top, row.error = one.get("top") or [], one.get("error")
    env_info = report.get("env") or {}
    result.runtime, result.runtime_version = got.get("runtime"), got.get("runtime_version")
    result.precision, result.input_size = got.get("precision"), got.get("input_size")
    result.emulated = bool(isinstance(env_info, dict) and env_info.get("emulated"))
    return result
