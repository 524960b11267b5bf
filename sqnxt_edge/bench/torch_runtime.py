"""PyTorch eager as one more runtime of the runner: the baseline a user would otherwise ship.

The bench names this class as the runner's plugin for `.pt` files (the runner cannot rebuild a model), so checkpoints go
through the very same measuring, accuracy and child-process code as every exported artifact. The model runs the
way a careful user runs it: eval mode, `torch.inference_mode()`, `torch.set_num_threads(threads)`, and no OpenMP
setting of ours (the package sets none), so the baseline is measured at its best for the thread count asked.
"""

from __future__ import annotations

import numpy as np
import torch

from ..checkpoint import load_checkpoint
from ..errors import SqnxtError

__all__ = ["TorchBackend"]


class TorchBackend:
    """The runner's backend interface (`sqnxt_edge.runner.backends.base.Backend`, by shape: the runner's copy on
    a board is not this package's) over a sqnxt-edge checkpoint (NCHW float32 in, logits out)."""

    def __init__(self, path: str, threads: int | None, runtime: str = "torch"):
        if threads:
            torch.set_num_threads(int(threads))
        try:
            ckpt = load_checkpoint(path)
            self.model = ckpt.build_model().eval()
        except SqnxtError as exc:
            raise RuntimeError(str(exc)) from None
        self.version = torch.__version__
        self.input_name, self.output_name = "input", "logits"
        self.input_shape = ["batch", ckpt.in_channels, ckpt.input_size, ckpt.input_size]
        self.input_dtype, self.quant, self.dynamic_batch = np.float32, None, True
        self.embedded = {
            "model_name": ckpt.model_name,
            "classes": ckpt.class_names(),
            "mean": list(ckpt.mean),
            "std": list(ckpt.std),
            "input_size": ckpt.input_size,
            "in_channels": ckpt.in_channels,
            "layout": "NCHW",
            "precision": "fp32",
            "dataset": ckpt.dataset,
        }

    def run(self, x: np.ndarray) -> np.ndarray:
        """One inference on a prepared NCHW float32 batch: the logits."""
        with torch.inference_mode():
            return self.model(torch.from_numpy(x)).numpy()

    def profile(self, x: np.ndarray, warmup: int, runs: int, between) -> dict:
        """Not here: per-layer profiles are onnxruntime's (the exported .onnx of the same checkpoint)."""
        raise NotImplementedError("per-layer profiles come from onnxruntime's profiler: profile the exported .onnx")
