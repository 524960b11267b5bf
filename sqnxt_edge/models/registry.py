"""The model registry: canonical names as the papers write them, plus the aliases people already type."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import SqnxtError, UnknownModelError

__all__ = [
    "ZooNet",
    "ModelSpec",
    "register",
    "resolve_name",
    "get_spec",
    "list_models",
    "create_model",
    "supports",
    "default_size",
]


class ZooNet(nn.Module):
    """What every zoo model is: `create_model` stamps the registered name and the stem on it (export and the
    profiler read both), and the forward pass splits into `forward_features` and `forward_head`."""

    model_name: str
    stem_kind: str

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Everything before the pooled classifier: the feature map profiling and embeddings read."""
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Pool and classify a feature map: the logits."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for an NCHW batch: `forward_head(forward_features(x))`."""
        return self.forward_head(self.forward_features(x))


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it, its stems and sizes, and how to adapt foreign weights."""

    name: str
    family: str
    build: Callable[..., ZooNet]  # (num_classes, in_channels, stem) -> module
    stems: tuple[str, ...]
    description: str
    verified: bool = True
    stem_for: Callable[[int], str] | None = None  # input size -> the stem the family prescribes (else stems[0])
    # stem -> the input sizes it takes, for families whose head pools a fixed window (None: any size)
    sizes: dict[str, tuple[int, ...]] | None = None
    # a foreign state_dict's keys (the original implementation's names) -> ours; ours pass through unchanged
    adapt_state: Callable[[dict], dict] | None = None

    def size_error(self, input_size: int, stem: str) -> str | None:
        """Why this family cannot take `input_size` with `stem` (None when it can)."""
        if self.sizes is None or input_size in self.sizes.get(stem, ()):
            return None
        takes = " or ".join(f"{s} px ({k} stem)" for k, sizes in self.sizes.items() for s in sizes)
        return f"{self.name} takes {takes} only, not {input_size} px with the {stem} stem"


_REGISTRY: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}  # lower-case alias -> canonical name


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model to the zoo under its canonical name; returns the spec."""
    _REGISTRY[spec.name] = spec
    _ALIASES[spec.name.lower()] = spec.name
    return spec


def add_alias(alias: str, name: str) -> None:
    """Let another spelling (case-insensitive) resolve to a registered name."""
    _ALIASES[alias.lower()] = name


# Seed-style spellings of the paper's variants (SqNxt_44_1.5x, SqNxt_23_2x_v3 ...). The names the re-implementation
# really defines (SqNxt_23_1x, _2x, _1x_v5, _2x_v5) are registered aliases of its own family and win over this.
_SEED = re.compile(r"^sqnxt_(\d+)_(1|1\.0|1\.5|2|2\.0)x(?:_(v[1-5]))?$")


def _seed_alias(key: str) -> str | None:
    match = _SEED.match(key)
    if not match:
        return None
    depth, width, version = match.groups()
    suffix = "" if version in (None, "v1") else version
    return f"{float(width):.1f}-sqnxt-{depth}{suffix}"


def resolve_name(name: str) -> str:
    """Canonical name for any accepted spelling (case-insensitive), or an error suggesting the closest names."""
    key = name.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    seed = _seed_alias(key)
    if seed is not None and seed in _ALIASES:
        return _ALIASES[seed]
    close = difflib.get_close_matches(key, list(_ALIASES), n=3, cutoff=0.5)
    hint = ", ".join(dict.fromkeys(_ALIASES[c] for c in close)) or "run `sqnxt-edge models` for the list"
    raise UnknownModelError(f"unknown model {name!r}; closest: {hint}")


def get_spec(name: str) -> ModelSpec:
    """The spec of a model by name or alias; UnknownModelError otherwise."""
    return _REGISTRY[resolve_name(name)]


def list_models(family: str | None = None) -> list[str]:
    """Registered names in registration order, optionally one family's."""
    return [n for n, s in _REGISTRY.items() if family is None or s.family == family]


def create_model(
    name: str,
    num_classes: int = 1000,
    input_size: int = 227,
    in_channels: int = 3,
    stem: str | None = None,
) -> ZooNet:
    """Build any zoo model. The stem follows `input_size` unless `stem` overrides it."""
    spec = get_spec(name)
    if num_classes < 1 or in_channels < 1 or input_size < 1:
        raise SqnxtError(
            f"num_classes, in_channels and input_size must be positive (got {num_classes}, {in_channels}, {input_size})"
        )
    chosen = stem or (spec.stem_for(input_size) if spec.stem_for else spec.stems[0])
    if chosen not in spec.stems:
        raise SqnxtError(f"{spec.name} has no stem {chosen!r}; choose one of {', '.join(spec.stems)}")
    reason = spec.size_error(input_size, chosen)
    if reason:
        raise SqnxtError(reason)
    model = spec.build(num_classes=num_classes, in_channels=in_channels, stem=chosen)
    model.model_name = spec.name
    model.stem_kind = chosen
    return model


def supports(name: str, input_size: int) -> bool:
    """Whether `create_model(name, input_size=...)` builds (with the stem the family picks for that size)."""
    spec = get_spec(name)
    stem = spec.stem_for(input_size) if spec.stem_for else spec.stems[0]
    return spec.size_error(input_size, stem) is None


def default_size(name: str, fallback: int = 224) -> int:
    """An input size the model takes: the smallest listed one for fixed-size families, else `fallback`."""
    spec = get_spec(name)
    return min(s for sizes in spec.sizes.values() for s in sizes) if spec.sizes else fallback
