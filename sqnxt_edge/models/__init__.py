"""The model zoo: SqueezeNext as its authors defined it, as the PyTorch re-implementation did, and the SqueezeNet
baselines."""

from . import squeezenext, seed_squeezenext, squeezenet  # noqa: F401,I001  (fill the registry; SqueezeNext first)
from .profile import LayerStats, ModelStats, layer_table, model_stats
from .registry import ModelSpec, ZooNet, create_model, default_size, get_spec, list_models, resolve_name, supports
from .seed_squeezenext import SeedSqueezeNext
from .squeezenext import STEMS, SqueezeNext, SqueezeNextCfg, default_stem
from .squeezenet import SqueezeNet, SqueezeNetCifar

__all__ = [
    "create_model",
    "list_models",
    "resolve_name",
    "get_spec",
    "ModelSpec",
    "ZooNet",
    "supports",
    "default_size",
    "SqueezeNext",
    "SqueezeNextCfg",
    "SqueezeNet",
    "SqueezeNetCifar",
    "SeedSqueezeNext",
    "STEMS",
    "default_stem",
    "model_stats",
    "layer_table",
    "ModelStats",
    "LayerStats",
]
