"""One top-1 rule everywhere: ties go to the lowest class index (numpy's argmax). A quantized int8 model can give two
classes exactly the same logit; eval, the export's int8 gates and the runner must count such an image the same way."""

import json

import numpy as np
import pytest
import torch

from sqnxt_edge.quantize.accuracy import report_from_predictions
from sqnxt_edge.runner import topk_accuracy
from sqnxt_edge.training.metrics import topk_correct

# row 0: classes 3 and 8 tie (the digits case); row 1: all tie; row 2: no tie
LOGITS = np.array([[0, 0, 0, 5, 0, 0, 0, 0, 5, 0], [1] * 10, [0, 0, 0, 0, 0, 0, 0, 9, 0, 0]], dtype=np.float32)


def test_ties_go_to_the_lowest_index_in_eval_runner_and_int8_gate():
    first = LOGITS.argmax(1)
    assert first.tolist() == [3, 0, 7]
    for labels in ([3, 0, 7], [8, 9, 7]):
        labels = np.array(labels)
        expected = int(np.sum(first == labels))
        assert topk_correct(torch.from_numpy(LOGITS), torch.from_numpy(labels), ks=(1,))[1] == expected
        assert round(topk_accuracy(LOGITS, labels)["top1"] * len(labels)) == expected
        assert round(report_from_predictions(first, first, labels).top1_int8 * len(labels) / 100) == expected


def test_top5_ranks_ties_by_index_too():
    labels = np.array([8, 4, 0])
    # row 1 (all equal): classes 0-4 are its top 5, so label 4 is in and label 5 would not be
    assert topk_correct(torch.from_numpy(LOGITS), torch.from_numpy(labels), ks=(5,))[5] == 3
    assert topk_correct(torch.from_numpy(LOGITS), torch.from_numpy(np.array([8, 5, 0])), ks=(5,))[5] == 2
    assert topk_accuracy(LOGITS, np.array([8, 5, 0]))["top5"] == 2 / 3


# -- every path that turns logits into a top-1, with a tie ---------------------------------------------------------


def test_the_int8_report_and_its_predictions_take_the_lowest_index():
    from types import SimpleNamespace

    from sqnxt_edge.quantize.accuracy import predict_top1

    model = SimpleNamespace(input_size=4, predict=lambda x: LOGITS[: len(x)])
    images = np.zeros((3, 4, 4, 3), np.uint8)
    assert predict_top1(None, images, model=model).tolist() == [3, 0, 7]


def test_the_export_parity_and_accuracy_gate_take_the_lowest_index():
    from types import SimpleNamespace

    from sqnxt_edge.export.context import ExportRun
    from sqnxt_edge.export.verify import compare

    swapped = LOGITS.copy()
    swapped[0] = [0, 0, 0, 4, 0, 0, 0, 0, 5, 0]  # PyTorch clearly says 8 where int8 ties 3 and 8
    assert compare(LOGITS, LOGITS, "int8")["top1_agreement"] == 1.0
    assert compare(LOGITS, swapped, "int8")["top1_agreement"] == pytest.approx(2 / 3)
    labels = np.array([3, 0, 7])  # the tie counts as right for label 3, exactly as eval counts it
    run = SimpleNamespace(
        eval_set=lambda: (None, labels),
        logits=lambda path, which: (LOGITS if path == "int8" else swapped, None),
        ckpt=SimpleNamespace(class_names=lambda: [str(i) for i in range(10)]),
        config=SimpleNamespace(max_drop=1.0),
    )
    acc = ExportRun.accuracy(run, "fp32", "int8")
    assert acc["top1_int8"] == 100.0 and acc["top1_fp32"] == pytest.approx(200 / 3, abs=1e-3)
    assert topk_correct(torch.from_numpy(LOGITS), torch.from_numpy(labels), ks=(1,))[1] == 3


def test_eval_of_an_exported_model_counts_a_tie_as_the_lowest_index(tmp_path, cli):
    """A 10-class model whose logits for 3 and 8 are always equal (the digits case): eval says 3 every time."""
    from builders import write_tiny_onnx

    weights = np.zeros((3, 10), np.float32)
    weights[:, 3] = weights[:, 8] = -1.0  # digits are mostly dark: -mean > 0, so 3 and 8 lead, tied
    meta = {"classes": [str(i) for i in range(10)], "dataset": "digits", "mean": [0.5] * 3, "std": [0.5] * 3}
    art = write_tiny_onnx(tmp_path / "tie10.onnx", weights=weights, extra_meta=meta)
    r = cli("eval", art, "--per-class", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    per = {c["label"]: c for c in data["per_class"]}
    assert per["3"]["top1"] == 100.0 and per["8"]["top1"] == 0.0
    assert data["correct1"] == per["3"]["n"] == sum(c["correct"] for c in data["per_class"])
    r = cli("eval", art, "--per-class")
    assert r.exit_code == 0 and "top-1 per class" in r.stdout
    assert "per_class" not in json.loads(cli("eval", art, "--json").stdout)


def test_the_int8_report_lists_each_class_and_flags_those_over_the_budget():
    labels = np.array([0] * 10 + [1] * 10 + [2] * 5)
    p32 = labels.copy()
    p8 = labels.copy()
    p8[:3] = 1  # class 0 loses 30 points; overall only 12
    p8[10] = 0  # class 1 loses 10
    report = report_from_predictions(p32, p8, labels, ["zero", "one", "two"], max_drop=15.0)
    rows = {c.label: c for c in report.per_class}
    assert rows["zero"].top1_int8 == 70.0 and rows["zero"].drop == 30.0 and rows["zero"].flagged
    assert rows["one"].drop == 10.0 and not rows["one"].flagged
    assert rows["two"].n == 5 and rows["two"].drop == 0.0
    assert report.to_dict()["flagged_classes"] == ["zero"] and report.drop == 16.0
    assert not report_from_predictions(p32, p8, labels).flagged  # no budget: nothing flagged


def test_the_per_class_report_is_plain_json():
    labels = np.array([0, 0, 1, 1])
    report = report_from_predictions(labels, np.array([0, 1, 1, 1]), labels, ["a", "b"], max_drop=1.0)
    data = json.loads(json.dumps(report.to_dict()))  # no numpy scalars: json would refuse np.bool_
    assert data["per_class"][0]["flagged"] is True and data["per_class"][1]["flagged"] is False
    assert data["flagged_classes"] == ["a"]
