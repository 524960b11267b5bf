"""ONNX -> ORT Mobile format with onnxruntime's own converter, and onnxruntime's mobile usability check
(how NNAPI and CoreML would partition the graph) summarized for the manifest and the table."""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..artifacts import OPS_CONFIG_SUFFIX
from ..errors import ExportError

__all__ = ["OPS_CONFIG_SUFFIX", "convert_to_ort", "mobile_usability", "ops_config_path"]

# Beside each .ort (OPS_CONFIG_SUFFIX): the operators and types it needs, as onnxruntime's converter writes them
# (`convert_onnx_models_to_ort --enable_type_reduction`), the input of a reduced ORT Mobile build:
# `build.py --minimal_build --include_ops_by_config <file> [--enable_reduced_operator_type_support]`.


def ops_config_path(ort_path: Path) -> Path:
    """`<name>.ort.required_operators_and_types.config`: the reduced-build config that belongs to `ort_path`."""
    return ort_path.with_name(ort_path.name + OPS_CONFIG_SUFFIX)


def convert_to_ort(onnx_path: Path, ort_path: Path) -> Path:
    """Write `ort_path` from `onnx_path` (fixed optimizations, portable: no x86-only NCHWc layout) and, beside it, the
    operator config a reduced ORT Mobile build needs to run it (`ops_config_path`)."""
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    logging.getLogger("ort_format_model.utils").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="sqnxt-ort-") as tmp:
        src = Path(tmp) / "in" / (ort_path.stem + ".onnx")
        src.parent.mkdir()
        shutil.copyfile(onnx_path, src)
        out_dir = Path(tmp) / "out"
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                convert_onnx_models_to_ort(
                    src,
                    output_dir=out_dir,
                    optimization_styles=[OptimizationStyle.Fixed],
                    target_platform="arm",
                    enable_type_reduction=True,
                )
        except Exception as exc:
            raise ExportError(f"ORT format conversion failed: {str(exc).strip().splitlines()[0]}") from None
        made, configs = list(out_dir.glob("*.ort")), list(out_dir.glob("*.config"))
        if len(made) != 1 or len(configs) != 1:
            raise ExportError(
                f"ORT format conversion wrote {len(made)} .ort and {len(configs)} .config files, expected 1"
            )
        shutil.move(str(made[0]), ort_path)
        lines = configs[0].read_text(encoding="utf-8").splitlines()  # "# - <temp path>": name the .ort instead
        text = "\n".join(f"# - {ort_path.name}" if line.startswith("# - ") else line for line in lines) + "\n"
        ops_config_path(ort_path).write_text(text, encoding="utf-8")
    return ort_path


def _summary(info) -> dict:
    return {
        "partitions": int(info.num_partitions),
        "supported_nodes": int(info.num_supported_nodes),
        "nodes": int(info.num_nodes),
        "unsupported_ops": sorted(info.unsupported_ops),
        "suitability": info.suitability().name,  # YES / MAYBE / NO, onnxruntime's own verdict
    }


def mobile_usability(onnx_path: Path) -> dict:
    """onnxruntime.tools.check_onnx_model_mobile_usability, as data: per EP partitions / supported nodes / verdict,
    and the tool's recommendation (try NNAPI/CoreML, or stay on the CPU EP)."""
    from onnxruntime.tools.mobile_helpers import usability_checker as uc
    from onnxruntime.tools.onnx_model_utils import optimize_model

    logging.getLogger("usability_checker").setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="sqnxt-usability-") as tmp, contextlib.redirect_stdout(io.StringIO()):
            opt = Path(tmp) / onnx_path.name
            optimize_model(onnx_path, opt, use_external_initializers=True)  # BASIC level, as the tool does
            model = uc.ModelProtoWithShapeInfo(opt).model_with_shape_info
            dynamic = bool(uc.check_shapes(model.graph)[0])
            checks = {
                "NNAPI": lambda fixed: uc.check_nnapi_partitions(model, require_fixed_input_sizes=fixed),
                "CoreML NeuralNetwork": lambda fixed: uc.check_coreml_partitions(
                    model, fixed, "coreml_supported_neuralnetwork_ops.md"
                ),
                "CoreML MLProgram": lambda fixed: uc.check_coreml_partitions(
                    model, fixed, "coreml_supported_mlprogram_ops.md"
                ),
            }
            report: dict[str, Any] = {}
            for ep, run in checks.items():
                report[ep] = _summary(run(True))
                if dynamic:  # what the EP could take once the batch is fixed (make_dynamic_shape_fixed)
                    report[ep]["if_shapes_fixed"] = _summary(run(False))
    except Exception as exc:  # a report, not a gate: say why it is missing
        return {"error": str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}
    try_eps = [ep for ep, r in report.items() if r["suitability"] != "NO"]
    report["recommendation"] = (
        f"try {' / '.join(try_eps)} against the CPU EP" if try_eps else "use the CPU EP (XNNPACK on mobile)"
    )
    return report


def usability_line(report: dict) -> str:
    """`NNAPI 1 part 100% YES; CoreML NN 1 part 100% YES; ...` for the table."""
    if not report or "error" in report:
        return f"n/a ({report.get('error', 'not run')})" if report else ""
    parts = []
    for ep, short in (("NNAPI", "NNAPI"), ("CoreML NeuralNetwork", "CoreML-NN"), ("CoreML MLProgram", "CoreML-MLP")):
        r = report.get(ep)
        if r:
            pct = 100 * r["supported_nodes"] / max(1, r["nodes"])
            text = f"{short} {r['suitability']} ({r['partitions']} part, {pct:.0f}%)"
            fixed = r.get("if_shapes_fixed")
            if fixed and fixed["suitability"] != r["suitability"]:
                text += f", {fixed['suitability']} if batch fixed"
            parts.append(text)
    return "; ".join(parts)
