"""Training-time augmentation in torch on uint8 batches: the seed's pad-and-crop and horizontal flip.

It runs on images already at the model's input size, before the shared `preprocess`, so training and every
exported artifact see the same normalization. Randomness comes from an explicit generator: a run is reproducible
from its seed, and a resumed run draws exactly what the uninterrupted one would have.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Augment", "augment_batch"]


@dataclass(frozen=True)
class Augment:
    """What to do to a training batch. `pad` is in pixels at 32 px and scales with the input size."""

    pad: int = 4
    flip: bool = True

    def pad_at(self, input_size: int) -> int:
        """The crop padding scaled to `input_size` (the recipe's pad is for 32 px)."""
        return max(0, round(self.pad * input_size / 32)) if self.pad else 0


def augment_batch(images: torch.Tensor, aug: Augment | None, generator: torch.Generator) -> torch.Tensor:
    """uint8 NHWC batch -> uint8 NHWC batch of the same size: zero-pad, random crop back, random flip."""
    if aug is None:
        return images
    n, h, w, _ = images.shape
    x = images.permute(0, 3, 1, 2)  # NCHW view
    pad = aug.pad_at(h)
    if pad:
        x = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        rows = dy[:, None] + torch.arange(h)[None, :]  # (n, h)
        cols = dx[:, None] + torch.arange(w)[None, :]  # (n, w)
        c = x.shape[1]
        x = torch.gather(x, 2, rows[:, None, :, None].expand(n, c, h, x.shape[3]))
        x = torch.gather(x, 3, cols[:, None, None, :].expand(n, c, h, w))
    if aug.flip:
        flip = torch.rand(n, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return x.permute(0, 2, 3, 1).contiguous()
