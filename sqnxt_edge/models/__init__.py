"""The model zoo: SqueezeNext as its authors defined it, and the SqueezeNet baselines."""

from . import squeezenext, squeezenet  # noqa: F401,I001  (fill the registry; SqueezeNext listed first)
from .profile import LayerStats, ModelStats, layer_table, model_stats
from .registry import ModelSpec, create_model, get_spec, list_models, resolve_name
from .squeezenext import STEMS, SqueezeNext, SqueezeNextCfg, default_stem
from .squeezenet import SqueezeNet

__all__ = [
    "create_model", "list_models", "resolve_name", "get_spec", "ModelSpec",
    "SqueezeNext", "SqueezeNextCfg", "SqueezeNet", "STEMS", "default_stem",
    "model_stats", "layer_table", "ModelStats", "LayerStats",
]
