"""`export()`: checkpoint -> verified artifacts + manifest. It only orchestrates; each format lives in its module.

Every artifact is written into a hidden staging folder inside the output folder, run through the runner and compared
with PyTorch there, and only then renamed into place (same filesystem, so the rename is atomic): a failed or
interrupted export never leaves a half file and never replaces a good one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..bench.runner import sidecar_path
from ..checkpoint import Checkpoint, load_checkpoint, sha256_file
from ..errors import ExportError, require
from ..models import model_stats
from .config import ExportConfig, ExportResult
from .formats import FORMATS, artifact_name
from .manifest import MANIFEST_NAME, tool_versions, update_manifest
from .metadata import build_metadata
from .verify import VerifySet, parity, reference_logits, verify_images

__all__ = ["export"]

Progress = Callable[[str], None]


@dataclass
class _Run:
    """State shared by the steps of one export."""

    ckpt: Checkpoint
    config: ExportConfig
    out: Path
    stage: Path
    model: Any
    stats: dict
    vset: VerifySet
    ref: np.ndarray | None
    say: Progress
    created: str
    tools: dict
    entries: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _calib: np.ndarray | None = None


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _load(ckpt: Checkpoint | str | os.PathLike) -> Checkpoint:
    if isinstance(ckpt, Checkpoint):
        return ckpt
    return load_checkpoint(ckpt)


def _output_dir(ckpt: Checkpoint, config: ExportConfig) -> Path:
    stem = ckpt.path.stem if ckpt.path else ckpt.model_name
    if ckpt.path and stem in ("best", "last") and ckpt.path.parent.name:
        # runs/<run>/best.pt: every run has a best.pt, so the run's folder is the checkpoint's real name
        stem = ckpt.path.parent.name if stem == "best" else f"{ckpt.path.parent.name}-last"
    out = Path(config.output_dir) if config.output_dir else Path("export") / stem
    try:
        if out.exists() and not out.is_dir():
            raise ExportError(f"output folder {out} is a file")
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as exc:
        raise ExportError(f"cannot write to output folder {out}: {exc.strerror or exc}") from None
    return out


def export(ckpt: Checkpoint | str | os.PathLike, config: ExportConfig | None = None,
           progress: Progress | None = None) -> ExportResult:
    """Export `ckpt` to every format x precision `config` asks for; verify each artifact against PyTorch.

    Raises ExportError (one line) on a failed check; the artifacts verified before the failure stay in place and
    are listed in the manifest.
    """
    config = config or ExportConfig()
    say = progress or (lambda message: None)
    for name in config.formats:  # a missing extra is reported before any work
        fmt = FORMATS[name]
        if fmt.extra:
            require(fmt.module, fmt.extra, f"--format {name}")
    ckpt = _load(ckpt)
    out = _output_dir(ckpt, config)
    model = ckpt.build_model()
    stats = model_stats(model, ckpt.input_size, ckpt.in_channels)
    vset = verify_images(ckpt, config.verify_size, config.seed, config.data_dir)
    ref = reference_logits(model, vset.images, ckpt.mean, ckpt.std) if config.verify else None
    stage = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    run = _Run(ckpt, config, out, stage, model, {"params": stats.params, "macs": stats.macs}, vset, ref, say,
               _now(), tool_versions())
    if config.int8:
        from ..quantize import warn_if_no_int8_dot

        line = warn_if_no_int8_dot()
        if line:
            run.warnings.append(line)
            say(line)
    try:
        if {"onnx", "ort"} & set(config.formats):
            from .onnx_steps import onnx_family

            onnx_family(run)
        if "tflite" in config.formats:
            from .tflite_steps import tflite_family

            tflite_family(run)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if run.entries or (out / MANIFEST_NAME).is_file():
            manifest_path, manifest = _write_manifest(run)
    return ExportResult(out, manifest_path, manifest, run.entries, run.warnings)


def _write_manifest(run: _Run):
    ck = run.ckpt
    info = {"path": str(ck.path) if ck.path else None, "sha256": ck.sha256, "model": ck.model_name,
            "dataset": ck.dataset, "classes": ck.class_names(), "num_classes": ck.num_classes,
            "input_size": ck.input_size, "in_channels": ck.in_channels, "epoch": ck.epoch,
            "metrics": ck.metrics}
    return update_manifest(run.out, info, run.entries, run.config.to_dict(), run.created)


# -- helpers the format steps share ------------------------------------------------------------------------------
def staged(run: _Run, fmt: str, precision: str) -> Path:
    return run.stage / artifact_name(run.ckpt.model_name, precision, fmt)


def metadata(run: _Run, precision: str, layout: str, input_name: str = "input", output_name: str = "logits",
             **extra) -> dict:
    return build_metadata(run.ckpt, precision, layout, input_name, output_name, created_utc=run.created, **extra)


def check(run: _Run, path: Path, precision: str) -> dict | None:
    """Parity of a staged artifact; raises ExportError (the file is then never promoted) unless --no-verify."""
    if not run.config.verify:
        return None
    run.say(f"verifying {path.name} on {len(run.vset.images)} {run.vset.source} images")
    report = parity(path, run.vset.images, run.ref, precision)
    report["images"] = run.vset.source
    if not report["passed"]:
        raise ExportError(f"{path.name} does not match PyTorch: {report['failure']} (use --no-verify to keep it)")
    return report


def promote(run: _Run, path: Path, fmt: str, precision: str, **info) -> dict:
    """Rename a verified staged artifact (and its sidecar) into the output folder and record its manifest entry."""
    dest = run.out / path.name
    os.replace(path, dest)
    side = Path(sidecar_path(str(path)))
    if side.is_file():
        os.replace(side, sidecar_path(str(dest)))
    entry = {
        "path": dest.name,
        "format": fmt,
        "precision": precision,
        "bytes": dest.stat().st_size,
        "sha256": sha256_file(dest),
        "params": run.stats["params"],
        "macs": run.stats["macs"],
        **info,
        "tools": run.tools,
        "created_utc": run.created,
    }
    run.entries.append(entry)
    run.say(f"wrote {dest}")
    return entry


def calibration(run: _Run) -> np.ndarray:
    """The int8 calibration sample (uint8 NHWC at input size), loaded once for every format."""
    if run._calib is None:
        from ..quantize import calibration_images

        c = run.config
        run.say(f"loading {c.calib_size} calibration images from {c.calib_data or run.ckpt.dataset or '?'}")
        run._calib = calibration_images(run.ckpt, c.calib_data, c.calib_size, c.seed, c.data_dir)
    return run._calib


def eval_set(run: _Run) -> tuple[np.ndarray, np.ndarray] | None:
    """Held-out labelled images for the fp32-vs-int8 accuracy report: --eval-data's test split, else the
    verification sample of the checkpoint's test split; None when there are no labels (random images)."""
    if run.config.eval_data:
        from ..data import load_dataset

        data = load_dataset(run.config.eval_data, "test", run.config.data_dir, channels=run.ckpt.in_channels)
        data = data.sample(run.config.verify_size, run.config.seed)
        return data.images, data.labels
    if run.vset.labels is None:
        return None
    return run.vset.images, run.vset.labels


def accuracy_gate(run: _Run, fp32: Path, int8: Path) -> dict | None:
    """fp32 vs int8 top-1 on held-out data; raises ExportError when the drop exceeds --max-drop."""
    from ..quantize import accuracy_report

    data = eval_set(run)
    if data is None:
        line = f"warning: no labelled data for {int8.name}: int8 accuracy not measured (pass --eval-data)"
        run.warnings.append(line)
        run.say(line)
        return None
    report = accuracy_report(fp32, int8, data[0], data[1]).to_dict()
    run.say(f"{int8.name}: top-1 fp32 {report['top1_fp32']:.2f}% int8 {report['top1_int8']:.2f}% "
            f"(drop {report['drop']:+.2f} pts, agreement {report['agreement']:.1f}%)")
    if report["drop"] > run.config.max_drop + 1e-9:
        raise ExportError(f"{int8.name} loses {report['drop']:.2f} top-1 points (> --max-drop {run.config.max_drop}); "
                          f"fp32 {report['top1_fp32']:.2f}% vs int8 {report['top1_int8']:.2f}%; int8 not written")
    return report
