"""Top-k accuracy and batched torch inference with the shared `preprocess`: what training's per-epoch test and
`evaluate` on a checkpoint both use, so the two report the same number."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data import preprocess
from ..runner import top_classes

__all__ = ["topk_correct", "torch_logits"]


def topk_correct(logits: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, ks=(1, 5)) -> dict[int, int]:
    """How many rows have their label among the k highest logits, for each k (k capped at the class count).

    The project's one top-1 rule (`runner.top_classes`, also the runner's, the export's int8 gates' and bench's):
    ties go to the lowest class index. `torch.topk` breaks ties its own way, so a quantized tie (two equal int8
    logits) once counted differently here than in the export's accuracy report."""
    scores = logits.detach().float().cpu().numpy() if isinstance(logits, torch.Tensor) else np.asarray(logits)
    truth = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    top = top_classes(scores, min(max(ks), scores.shape[1])).reshape(len(scores), -1)
    hits = top == truth.reshape(-1, 1)
    return {k: int(hits[:, :k].any(axis=1).sum()) for k in ks}


@torch.inference_mode()
def torch_logits(
    model: nn.Module,
    images: np.ndarray,
    input_size: int,
    mean,
    std,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    amp: bool = False,
) -> torch.Tensor:
    """Logits (float32, CPU) for uint8 NHWC images, in eval mode."""
    was_training = model.training
    model.eval()
    device = torch.device(device)
    outs = []
    try:
        for i in range(0, len(images), batch_size):
            x = preprocess(images[i : i + batch_size], input_size, mean, std).to(device, non_blocking=True)
            with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
                outs.append(model(x).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(outs) if outs else torch.zeros((0, 0))
