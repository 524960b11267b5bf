"""The report a person reads: a runtime column, the recommended file first, an accuracy-vs-latency plot whose labels
never overlap, a confusion matrix, and an export-steps table of real steps only. Built from results written here
(no timing is run)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from sqnxt_edge.bench.api import BenchRun
from sqnxt_edge.export import ExportResult
from sqnxt_edge.pipeline import report as pipeline_report
from sqnxt_edge.pipeline.confusion import confusion_panels
from sqnxt_edge.pipeline.figures import confusion_matrix, place_labels, plot_confusion

from builders import write_tiny_onnx

# (file, format, precision, runtime, p50 ms, top-1 %, MB): the crowded case, PyTorch far to the right
ROWS = [
    ("m.fp32.onnx", "onnx", "fp32", "onnxruntime", 0.70, 98.89, 2.9),
    ("m.fp32.onnx", "onnx", "fp32", "openvino", 0.71, 98.89, 2.9),
    ("m.int8.onnx", "onnx", "int8", "onnxruntime", 0.49, 99.17, 0.9),
    ("m.int8.onnx", "onnx", "int8", "openvino", 0.50, 99.17, 0.9),
    ("m.fp32.ort", "ort", "fp32", "onnxruntime", 0.72, 98.89, 2.9),
    ("m.int8.ort", "ort", "int8", "onnxruntime", 0.52, 99.17, 0.9),
    ("m.fp32.tflite", "tflite", "fp32", "litert", 0.95, 98.89, 2.8),
    ("m.int8.tflite", "tflite", "int8", "litert", 0.61, 98.61, 0.8),
    ("best.pt", "pytorch", "fp32", "torch", 13.7, 98.89, 8.5),
]


def _run(folder: Path, emulated: bool = False, verified=("m.int8.onnx", "m.fp32.onnx", "m.int8.ort")) -> BenchRun:
    results = []
    for name, fmt, prec, runtime, ms, top1, mb in ROWS:
        path = folder / name
        path.write_bytes(b"x")
        if name in verified:
            path.with_name(name + ".meta.json").write_text(json.dumps({"verified_on": ["x86-vnni"]}))
        lat = {"mean": ms, "std": 0.01, "min": ms, "p50": ms, "p90": ms, "p99": ms * 1.2, "max": ms * 2}
        results.append(
            {
                "artifact": str(path),
                "format": fmt,
                "precision": prec,
                "runtime": runtime,
                "runtime_version": "9.1",
                "threads": 1,
                "batch": 1,
                "size_bytes": int(mb * 2**20),
                "top1": top1 / 100,
                "n": 360,
                "latency_ms": lat,
            }
        )
    env = {"model": "cpu", "arch": "x86_64", "cores": 2, "emulated": emulated}
    from sqnxt_edge.bench.recommend import recommend

    recommended = [r.to_dict() for r in recommend(results)]  # as run_bench stores them
    return BenchRun(
        env, results, reference=str(folder / "best.pt"), config={"threads": 1, "batch": 1}, recommended=recommended
    )


CKPT = SimpleNamespace(model_name="m", dataset="digits", path="m.pt", sha256="0" * 64, num_classes=10, input_size=32)


def test_the_table_has_a_runtime_column_and_the_recommended_file_first(tmp_path):
    run = _run(tmp_path)
    ship = pipeline_report.recommended(run)
    assert [(Path(r["artifact"]).name, r["runtime"]) for r in ship] == [
        ("m.int8.onnx", "onnxruntime"),
        ("m.fp32.onnx", "onnxruntime"),
    ]  # the fastest verified file per precision, with its fastest runtime
    exported = ExportResult(tmp_path, tmp_path / "manifest.json", {}, [])
    md = pipeline_report._markdown(SimpleNamespace(**vars(CKPT), epoch=3), exported, run, {})
    table = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert table[0].startswith("| artifact | runtime | format | precision |")
    assert table[1].startswith("| **m.int8.onnx** (recommended) | onnxruntime 9.1 | onnx | int8 |")
    assert table[2].startswith("| **m.fp32.onnx** (recommended) | onnxruntime 9.1 | onnx | fp32 |")
    assert "| m.int8.onnx | openvino 9.1 | onnx | int8 |" in md  # same file, other runtime: told apart
    assert "Recommended: `m.int8.onnx` with onnxruntime, `m.fp32.onnx` with onnxruntime" in md
    assert pipeline_report.recommended(_run(tmp_path, emulated=True)) == []  # an emulator's speed ships nothing


def test_accuracy_vs_latency_labels_every_point_once_without_overlaps(tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from sqnxt_edge.plots import new_figure

    png = pipeline_report.plot_accuracy_vs_latency(_run(tmp_path), tmp_path / "acc.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = new_figure(figsize=(7.5, 4.8))
    fig.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.12)
    ax = fig.subplots()
    xs, ys = [r[4] for r in ROWS], [r[5] for r in ROWS]
    ax.scatter(xs, ys)
    ax.set_xscale("log")
    ax.set_xlim(0.2, 30)
    ax.set_ylim(97.5, 100.2)
    texts = [f"{r[1]} {r[2]} · {r[3]}" for r in ROWS]
    notes = place_labels(fig, ax, list(zip(xs, ys)), texts, [4.0] * len(ROWS), ["C0"] * len(ROWS))
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [n.get_window_extent(renderer) for n in notes]
    assert sorted(n.get_text() for n in notes) == sorted(texts) and len(set(texts)) == len(texts)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a.x1 <= b.x0 or b.x1 <= a.x0 or a.y1 <= b.y0 or b.y1 <= a.y0, "two labels overlap"


def test_the_plot_axis_is_logarithmic(tmp_path, monkeypatch):
    seen = {}
    real = pipeline_report._plot_points

    def spy(points, path, title):
        out = real(points, path, title)
        seen["points"] = points
        return out

    monkeypatch.setattr(pipeline_report, "_plot_points", spy)
    pipeline_report.plot_accuracy_vs_latency(_run(tmp_path), tmp_path / "acc.png")
    assert {p["runtime"] for p in seen["points"]} >= {"onnxruntime", "openvino", "litert", "torch"}
    from sqnxt_edge.pipeline import figures

    fig_axes = []
    monkeypatch.setattr(figures, "save_png", lambda fig, path: fig_axes.extend(fig.axes) or path)
    figures.plot_accuracy_vs_latency(seen["points"], tmp_path / "b.png", "t")
    assert fig_axes[0].get_xscale() == "log"


def test_confusion_matrix_counts_and_picture(tmp_path):
    counts = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    assert counts.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    png = plot_confusion([("fp32", counts), ("int8", counts)], ["a", "b", "c"], tmp_path / "c.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_confusion_panels_run_the_exported_files_on_the_test_split(tmp_path):
    weights = np.zeros((3, 10), np.float32)
    weights[:, 3] = weights[:, 8] = -1.0  # always 3 (tied with 8: the lowest index wins)
    meta = {"classes": [str(i) for i in range(10)], "dataset": "digits", "mean": [0.5] * 3, "std": [0.5] * 3}
    write_tiny_onnx(tmp_path / "m.fp32.onnx", weights=weights, extra_meta=meta)
    entries = [{"path": "m.fp32.onnx", "format": "onnx", "precision": "fp32"}]
    exported = ExportResult(tmp_path, tmp_path / "manifest.json", {}, entries)
    panels, classes = confusion_panels(exported, "digits", None, 3)
    assert classes == [str(i) for i in range(10)] and len(panels) == 1
    title, counts = panels[0]
    assert "m.fp32.onnx" in title and counts.sum() == 360 and counts[:, 3].sum() == 360
    assert confusion_panels(exported, None, None, 3) == ([], [])


def test_the_export_steps_are_real_steps_only():
    from sqnxt_edge.export.context import ExportRun

    said = []
    fields = dict.fromkeys(("ckpt", "config", "out", "stage", "model", "stats", "vset", "ref"))
    run = ExportRun(**fields, say=said.append, created="", tools={})
    run.say("exporting ONNX")
    run.note("wrote x.onnx")
    run.warn("warning: something")
    run.say("quantizing ONNX to int8")
    assert [t["step"] for t in run.timings()] == ["exporting ONNX", "quantizing ONNX to int8"]
    assert said == ["exporting ONNX", "wrote x.onnx", "warning: something", "quantizing ONNX to int8"]
    assert run.warnings == ["warning: something"]


@pytest.mark.parametrize("flagged", [True, False])
def test_the_int8_section_names_classes_over_the_budget(tmp_path, flagged):
    per_class = [
        {"index": 0, "label": "cat", "n": 10, "top1_fp32": 90.0, "top1_int8": 40.0, "drop": 50.0, "flagged": flagged}
    ]
    acc = {"top1_fp32": 90.0, "top1_int8": 40.0, "drop": 50.0, "agreement": 50.0, "n": 10, "max_drop": 1.0}
    acc["flagged_classes"] = ["cat"] if flagged else []
    entry = {"path": "m.int8.onnx", "precision": "int8", "accuracy": {**acc, "per_class": per_class}}
    exported = ExportResult(tmp_path, tmp_path / "manifest.json", {}, [entry])
    md = pipeline_report._markdown(SimpleNamespace(**vars(CKPT), epoch=3), exported, _run(tmp_path), {})
    assert ("lost more than 1 points: cat (90.0% -> 40.0%)" in md) is flagged
