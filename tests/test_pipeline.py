"""The pipeline ties real stages together: export -> verify -> accuracy -> bench -> report folder."""

import json
import re

import pytest

from sqnxt_edge.bench import report as bench_report
from sqnxt_edge.pipeline import PipelineConfig, run_pipeline


@pytest.mark.slow
def test_pipeline_writes_a_report_with_every_artifact(digits_checkpoint, tmp_path):
    result = run_pipeline(
        digits_checkpoint,
        PipelineConfig(
            formats=["onnx"],
            int8=True,
            export_dir=tmp_path / "export",
            output_dir=tmp_path / "report",
            threads=1,
            warmup=1,
            runs=5,
            min_seconds=0.0,
        ),
        progress=False,
    )
    assert result.ok
    names = {r["name"] for r in bench_report.rows(result.bench)}
    assert names == {"1.0-SqNxt-23.fp32.onnx", "1.0-SqNxt-23.int8.onnx", digits_checkpoint.name}
    report = (tmp_path / "report" / "report.md").read_text()
    int8_row = r"\| (\*\*)?1\.0-SqNxt-23\.int8\.onnx(\*\* \(recommended\))? \| onnxruntime [\w.+-]+ \| onnx \| int8 \|"
    assert re.search(int8_row, report), report
    assert "int8 accuracy cost" in report
    assert re.search(
        r"^- local, (fp32|int8): ship 1\.0-SqNxt-23\.\w+\.onnx with \w+ \(fastest verified: p50 ", report, re.M
    )
    steps = report.split("Export steps:")[1].split("##")[0]
    assert "| wrote " not in steps and "| warning" not in steps  # log lines are no steps
    data = json.loads((tmp_path / "report" / "results.json").read_text())
    by_name = {r["artifact"]: r for r in data["summary"]}
    # the same test images through PyTorch and through the fp32 ONNX: identical top-1
    assert by_name["1.0-SqNxt-23.fp32.onnx"]["top1"] == pytest.approx(by_name[digits_checkpoint.name]["top1"])
    assert data["int8_accuracy"][0]["n"] == 360
    assert data["recommended"] and data["recommended"][0]["artifact"] in {r["path"] for r in data["summary"]}
    for plot in ("latency.png", "accuracy_vs_latency.png", "confusion_matrix.png"):
        assert (tmp_path / "report" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pipeline_cli_bad_checkpoint_is_one_line(cli, tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    result = cli("pipeline", bad, "-o", tmp_path / "report")
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "report").exists()


def test_demo_and_pipeline_have_help(cli):
    assert cli("demo", "--help").exit_code == 0
    assert cli("pipeline", "--help").exit_code == 0
