"""The ONNX family of an export: fp32 ONNX (export, simplify, check, metadata), its fp16 and int8 variants, and the
.ort file of each precision. Each artifact is staged, verified, then promoted (see exporter)."""

from __future__ import annotations

from pathlib import Path

from ..artifacts import embed_onnx_metadata, read_metadata, write_sidecar
from ..errors import ExportError
from . import onnx_export as ox
from .context import ExportRun
from .ort_export import convert_to_ort, mobile_usability, ops_config_path

__all__ = ["onnx_family"]


def _io(run: ExportRun, layout: str = "NCHW") -> dict:
    batch = run.config.fixed_batch
    c, s = run.ckpt.in_channels, run.ckpt.input_size
    return {
        "input": {
            "name": ox.INPUT_NAME,
            "shape": [batch if batch else "batch", c, s, s],
            "layout": layout,
            "dtype": "float32",
        },
        "output": {"name": ox.OUTPUT_NAME, "shape": [batch or "batch", run.ckpt.num_classes]},
    }


def _write(run: ExportRun, model, precision: str, **meta_extra) -> Path:
    meta = run.metadata(precision, "NCHW", **meta_extra)
    embed_onnx_metadata(model, meta)
    path = run.staged("onnx", precision)
    ox.save_onnx(model, path)
    write_sidecar(path, meta)
    return path


def _fp32(run: ExportRun) -> tuple[Path, dict]:
    c = run.config
    run.say(f"exporting ONNX (opset {c.opset}, batch {c.fixed_batch or 'dynamic'})")
    model = ox.export_onnx(run.model, run.ckpt.input_size, run.ckpt.in_channels, c.opset, c.fixed_batch)
    if c.simplify:
        run.say("simplifying with onnxsim")
        model = ox.simplify_onnx(model, dynamic=c.fixed_batch is None)
    model = ox.check_onnx(model)
    ops = ox.op_counts(model)
    return _write(run, model, "fp32"), {"ops": ops, "simplified": c.simplify}


def _fp16(run: ExportRun, fp32_path: Path) -> tuple[Path, dict]:
    import onnx

    run.say("converting ONNX to float16 (float32 I/O)")
    model = ox.check_onnx(ox.to_fp16(onnx.load(str(fp32_path))))
    return _write(run, model, "fp16"), {"ops": ox.op_counts(model)}


def _int8_meta(run: ExportRun, cfg) -> dict:
    """The int8 file's metadata: the artifact facts plus the CPU classes its configuration is safe on."""
    from ..quantize.targets import safe_on

    return run.metadata("int8", "NCHW", int8_target=run.config.int8_target, safe_on=list(safe_on(cfg)))


def _int8_tuned(run: ExportRun, fp32_path: Path, dest: Path) -> dict:
    from ..quantize import tune_onnx
    from ..quantize.choice import default_int8_config
    from ..quantize.tune import TuneError

    c = run.config
    data = run.eval_set()
    if data is None:
        raise ExportError("--int8-tune needs labelled data: the checkpoint's dataset or --eval-data")
    run.say(f"tuning int8 configurations safe on {c.int8_target} (accuracy and speed, 1 thread)")
    if run.board is not None:
        run.warn(f"warning: --int8-tune measures speed on this machine, not on {run.board.name}")
    try:
        result = tune_onnx(
            fp32_path,
            dest,
            run.calibration(),
            data[0],
            data[1],
            max_drop=c.max_drop,
            threads=1,
            batch=c.fixed_batch or 1,
            progress=True,
            target=c.int8_target,
            meta=_int8_meta(run, default_int8_config(c.int8_target)),
        )
    except TuneError as exc:
        run.warnings.append(str(exc))
        raise
    return {"int8_tune": result.to_dict(), "quantization": result.chosen.to_dict() if result.chosen else None}


def _int8_chosen(run: ExportRun, fp32_path: Path, dest: Path) -> dict:
    """The first safe configuration, fastest here first, that passes the int8 gates on real images; the next one
    when it does not; a one-line error naming what was tried when none does."""
    from ..quantize import Int8Session, choose_int8
    from ..quantize.targets import covers, safe_on

    c, calib = run.config, run.calibration()
    run.say(f"choosing int8 configurations safe on {c.int8_target} (timed once per CPU class, then cached)")
    choice = choose_int8(c.int8_target, probe=ox.probe_onnx)
    tried: list[dict] = []
    with Int8Session(fp32_path, calib, progress=True) as session:
        for base in choice.candidates:
            cfg = base.with_(calib_method=c.calib_method)
            run.say(f"quantizing ONNX to int8 ({cfg.label}) on {len(calib)} calibration images")
            session.quantize(cfg, dest, _int8_meta(run, cfg))
            verdict = run.int8_verdict(fp32_path, dest)
            tried.append({"label": cfg.label, "speedup_here": choice.speedups.get(base.label), **verdict})
            if verdict["passed"]:
                break
            run.warn(f"warning: {cfg.label} misses the int8 gates ({verdict['why']}); trying the next configuration")
        else:
            listing = "; ".join(f"{t['label']}: {t['why']}" for t in tried)
            raise ExportError(f"no int8 configuration safe on {c.int8_target} passes: {listing}; int8 not written")
    classes = ", ".join(covers(c.int8_target))
    speed = choice.speedups.get(base.label)
    order = "ordered by speed on this machine" if choice.speedups else "in the table's order (not timed here)"
    why = (
        f"{cfg.label}" + (f" ({speed:.2f}x vs fp32 here, 1 thread)" if speed else "") + f": the first of the "
        f"{len(choice.candidates)} configurations numerically safe on {classes}, {order}, to pass the accuracy gates"
    )
    return {
        "quantization": {
            **cfg.to_dict(),
            "target": c.int8_target,
            "safe_on": list(safe_on(cfg)),
            "choice": {**choice.to_dict(), "tried": tried, "why": why},
        }
    }


def _int8(run: ExportRun, fp32_path: Path) -> tuple[Path, dict]:
    from ..quantize.targets import target_suffix

    dest = run.staged("onnx", target_suffix(run.config.int8_target))
    info = (_int8_tuned if run.config.int8_tune else _int8_chosen)(run, fp32_path, dest)
    import onnx

    info["ops"] = ox.op_counts(onnx.load(str(dest)))
    return dest, info


def _finish(run: ExportRun, precision: str, path: Path, info: dict, fp32_onnx: Path | None = None) -> Path:
    """Convert to .ort if asked, verify, gate int8 accuracy, promote; returns where the ONNX now lies."""
    c = run.config
    ort_path = None
    if "ort" in c.formats:
        ort_path = path.with_suffix(".ort")
        run.say(f"converting {path.name} to ORT format")
        convert_to_ort(path, ort_path)
        ops = ops_config_path(ort_path).name  # for a reduced ORT Mobile build that runs just this model
        write_sidecar(ort_path, {**read_metadata(str(path)), "ops_config": ops})  # the facts and recipe of its .onnx
    parity_onnx = run.check(path, precision)
    parity_ort = run.check(ort_path, precision) if ort_path else None
    accuracy = run.accuracy_gate(fp32_onnx, path) if precision == "int8" and fp32_onnx else None
    common = {
        "opset": c.opset,
        **_io(run),
        "dynamic_batch": c.fixed_batch is None,
        "accuracy": accuracy,
        **{k: v for k, v in info.items() if k != "ops"},
    }
    if ort_path:
        run.say(f"checking {path.name} for mobile usability (NNAPI / CoreML)")
        usability = mobile_usability(path)
        run.promote(ort_path, "ort", precision, parity=parity_ort, mobile_usability=usability, ops_config=ops, **common)
    if "onnx" in c.formats:
        run.promote(path, "onnx", precision, parity=parity_onnx, ops=info.get("ops"), **common)
        return run.out / path.name
    return path


def onnx_family(run: ExportRun) -> None:
    """Write the ONNX artifacts (fp32, then fp16 and int8 from it) and their .ort files."""
    fp32_path, info = _fp32(run)
    fp32_path = _finish(run, "fp32", fp32_path, info)
    if run.config.fp16:
        _finish(run, "fp16", *_fp16(run, fp32_path))
    if run.config.int8:
        _finish(run, "int8", *_int8(run, fp32_path), fp32_onnx=fp32_path)
