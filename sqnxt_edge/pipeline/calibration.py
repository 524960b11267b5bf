"""Calibrating a board on zoo models: export them here (random weights: latency does not depend on them), fp32 and
int8, at the sizes asked, then profile and fit them on the board (`profiling.calibrate`).

`sqnxt-edge estimate --calibrate -d BOARD` with no artifacts calibrates on `profiling.CALIBRATION_MODELS`; the files
are kept in the cache (`SQNXT_EDGE_CACHE`/calibration) and reused by the next board or thread count.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ..cache import cache_dir
from ..errors import SqnxtError
from ..profiling.calibrate import CALIBRATION_MODELS, calibrate
from ..profiling.estimate import Estimate, default_classes

__all__ = ["CALIBRATION_SIZES", "zoo_artifacts", "calibrate_board"]

CALIBRATION_SIZES = (32, 227)  # two sizes: per-layer overhead and compute move differently with size


def zoo_artifacts(
    models: Sequence[str],
    sizes: Sequence[int] = CALIBRATION_SIZES,
    precisions: Sequence[str] = ("fp32", "int8"),
    folder: str | os.PathLike | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[tuple[str, int, str], Path]:
    """{(model, size, precision): ONNX file} for zoo `models` with random weights, exported once into `folder`
    (default: the cache's calibration folder) and reused after. int8 files take the default int8 configuration,
    calibrated on the embedded digits images and not accuracy-checked (random weights have no accuracy to keep)."""
    from ..checkpoint import random_checkpoint
    from ..export import ExportConfig, export
    from ..models import create_model
    from ..models.registry import supports

    for name in models:  # every name and size checked before the first (slow) export
        for size in sizes:
            if not supports(name, size):  # an unknown name or a size the model does not take: its one line
                create_model(name, default_classes(size), size)
    root = Path(folder) if folder is not None else cache_dir() / "calibration"
    say = say or (lambda message: None)
    out = {}
    for size in sizes:
        for name in models:
            where = root / f"{name}-{size}"
            paths = {p: where / f"{name}.{p}.onnx" for p in precisions}
            if not all(path.is_file() for path in paths.values()):
                say(f"exporting {name} at {size} px ({', '.join(precisions)}) into {where}")
                ckpt = random_checkpoint(name, default_classes(size), size)
                int8 = "int8" in precisions
                config = ExportConfig(
                    formats=["onnx"],
                    int8=int8,
                    calib_data="digits" if int8 else None,
                    calib_size=16 if int8 else None,
                    verify=False,
                    output_dir=where,
                )
                export(ckpt, config)
            out.update({(name, size, p): path for p, path in paths.items()})
    return out


def calibrate_board(
    device: str = "local",
    models: Sequence[str] = CALIBRATION_MODELS,
    artifacts: Sequence[str | os.PathLike] = (),
    sizes: Sequence[int] = CALIBRATION_SIZES,
    precisions: Sequence[str] = ("fp32", "int8"),
    threads: int | None = None,
    runs: int = 50,
    repeats: int = 1,
    devices_file: str | os.PathLike | None = None,
    folder: str | os.PathLike | None = None,
    progress: bool = True,
    say: Callable[[str], None] | None = None,
) -> list[Estimate]:
    """Calibrate `device` on zoo `models` (exported here as needed) and any exported `artifacts`: the factors per
    precision land in the device registry, the calibrated estimates of the calibration files come back. `repeats`
    profiles every file that many times, one round after another (each round meets other load; the lowest p50
    counts)."""
    files = list(zoo_artifacts(models, sizes, precisions, folder, say).values()) if models else []
    files += [Path(a) for a in artifacts]
    if not files:
        raise SqnxtError("nothing to calibrate on: give zoo models or exported .onnx files")
    if repeats < 1:
        raise SqnxtError(f"--repeats must be at least 1, got {repeats}")
    results = calibrate(files * repeats, device, threads, runs=runs, devices_file=devices_file, progress=progress)
    return results[: len(files)]
