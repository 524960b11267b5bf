"""One top-1 rule everywhere: ties go to the lowest class index (numpy's argmax). A quantized int8 model can give two
classes exactly the same logit; eval, the export's int8 gates and the runner must count such an image the same way."""

import numpy as np
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
