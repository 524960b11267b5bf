"""`export()`: checkpoint -> verified artifacts + manifest. It only orchestrates; each format family lives in its
module and the formats table says which family writes which format.

Every artifact is written into a hidden staging folder inside the output folder, run through the runner and compared
with PyTorch there, and only then renamed into place (same filesystem, so the rename is atomic): a failed or
interrupted export never leaves a half file and never replaces a good one. The manifest is rewritten after each
promoted artifact, one export at a time holds the folder, and what a killed export left is finished by the next one
(see `staging`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..artifacts import utc_now
from ..checkpoint import Checkpoint, load_checkpoint
from ..errors import ExportError, require
from ..formats import FORMATS
from ..models import model_stats
from .config import ExportConfig, ExportResult
from .context import ExportRun, Progress
from .manifest import MANIFEST_NAME, tool_versions, update_manifest
from .ncnn_steps import ncnn_family
from .onnx_steps import onnx_family
from .pte_steps import pte_family
from .staging import adopt, export_lock, make_stage, stale_stages
from .tflite_jobs import Conversions, parallel_conversions
from .tflite_steps import converted_precisions, tflite_family
from .verify import reference_logits, verify_images

__all__ = ["export", "FAMILIES"]

# family (the formats table's `family` column) -> the step that writes every format of it
FAMILIES: dict[str, Callable[[ExportRun], None]] = {
    "onnx": onnx_family,
    "tflite": tflite_family,
    "pte": pte_family,
    "ncnn": ncnn_family,
}


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
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-", delete=True):
            pass
    except OSError as exc:
        raise ExportError(f"cannot write to output folder {out}: {exc.strerror or exc}") from None
    return out


def export(
    ckpt: Checkpoint | str | os.PathLike, config: ExportConfig | None = None, progress: Progress | None = None
) -> ExportResult:
    """Export `ckpt` to every format x precision `config` asks for; verify each artifact against PyTorch.

    Raises ExportError (one line) on a failed check; the artifacts verified before the failure stay in place and
    are listed in the manifest. One export at a time per output folder (`config.lock_wait`).
    """
    started = time.perf_counter()
    config = config or ExportConfig()
    say = progress or (lambda message: None)
    for name in config.formats:  # a missing extra is reported before any work
        fmt = FORMATS[name]
        if fmt.extra and fmt.module:  # the table gives both or neither
            require(fmt.module, fmt.extra, f"--format {name}")
    ckpt = _load(ckpt)
    out = _output_dir(ckpt, config)
    with export_lock(out, config.lock_wait, say):
        _finish_dead_exports(out, say)
        return _export(ckpt, config, out, say, started)


def _export(ckpt: Checkpoint, config: ExportConfig, out: Path, say: Progress, started: float) -> ExportResult:
    model = ckpt.build_model()
    stats = model_stats(model, ckpt.input_size, ckpt.in_channels)
    vset = verify_images(ckpt, config.verify_size, config.seed, config.data_dir)
    ref = reference_logits(model, vset.images, ckpt.mean, ckpt.std) if config.verify else None
    manifest: dict[str, Any]
    created, tools, manifest_path, manifest = utc_now(), tool_versions(), out / MANIFEST_NAME, {}
    stage = make_stage(out)  # a signal from here on finds the `finally` below (SIGKILL: the next export cleans up)
    run = ExportRun(
        ckpt=ckpt,
        config=config,
        out=out,
        stage=stage,
        model=model,
        stats={"params": stats.params, "macs": stats.macs},
        vset=vset,
        ref=ref,
        say=say,
        created=created,
        tools=tools,
    )
    run._marks.insert(0, ("loading the checkpoint and verification images", started))
    try:
        if config.verify_on:  # the board is read before any work: unreachable boards fail fast
            from .board import BoardCheck

            run.board = BoardCheck(config.verify_on, config.devices_file, vset, stage, run.say)
        if config.int8:
            _check_int8_target(run)
        families = [f for f in dict.fromkeys(FORMATS[name].family for name in config.formats) if f]
        if "tflite" in families and parallel_conversions():  # converted beside everything else from the start
            run.conversions = Conversions(run, converted_precisions(config))
        for family in families:
            FAMILIES[family](run)
    finally:
        if run.conversions is not None:
            run.conversions.close()
        # stopped between a rename and its manifest write: the journal still knows the entry
        promoted = {e["path"] for e in run.entries}
        run.entries += [entry for entry, _ in adopt(stage, out) if entry["path"] not in promoted]
        shutil.rmtree(stage, ignore_errors=True)
        if run.entries or (out / MANIFEST_NAME).is_file():
            manifest_path, manifest = run.write_manifest()
    return ExportResult(out, manifest_path, manifest, run.entries, run.warnings, run.timings())


def _check_int8_target(run: ExportRun) -> None:
    """A file made for one CPU class must be verified on that class: this machine, or the --verify-on board. Warn
    when the CPU the file is checked on has no int8 dot product (int8 may then be slower than fp32)."""
    from ..quantize import warn_if_no_int8_dot
    from ..quantize.targets import CPU_CLASSES, PORTABLE, class_of
    from ..runner import cpu_info

    target = run.config.int8_target
    classes = {class_of(cpu_info()).name: "this machine"}
    if run.board is not None:
        classes[class_of(run.board.env).name] = run.board.name
    if target != PORTABLE and target not in classes:
        emulation = CPU_CLASSES[target].emulation
        how = (
            f"`sqnxt-edge devices emulate NAME --profile {emulation}` makes an emulated one"
            if emulation
            else "QEMU cannot present it: use a real one"
        )
        raise ExportError(
            f"--int8-target {target}: a file made for {target} must be verified on such a CPU, and "
            f"{' and '.join(f'{w} is {c}' for c, w in classes.items())}; add --verify-on BOARD ({how})"
        )
    line = warn_if_no_int8_dot(run.target_cpu)
    if line:
        run.warn(line)


def _finish_dead_exports(out: Path, say: Progress) -> None:
    """Adopt into the manifest what exports killed here had verified and renamed, then remove their staging
    folders (only those whose process is gone), and temp files of manifest writes they left."""
    for stage in stale_stages(out):
        for entry, args in adopt(stage, out):
            update_manifest(out, entries=[entry], **args)
        shutil.rmtree(stage, ignore_errors=True)
        say(f"removed {stage.name}, left by an export that was killed")
    for tmp in out.glob(f".{MANIFEST_NAME}.*.tmp"):  # only a lock holder writes the manifest: these are dead
        tmp.unlink(missing_ok=True)
