"""Training and evaluation: recipes as data, one training loop, checkpoints that carry their own config."""

from .config import TrainConfig, TrainResult
from .evaluate import EvalResult, evaluate
from .recipes import RECIPES, Recipe, get_recipe
from .trainer import resolve_config, train

__all__ = [
    "TrainConfig",
    "TrainResult",
    "Recipe",
    "RECIPES",
    "get_recipe",
    "train",
    "resolve_config",
    "evaluate",
    "EvalResult",
]
