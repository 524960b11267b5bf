"""sqnxt-edge: SqueezeNext and SqueezeNet from training to a benchmarked int8 model on an edge board.

    from sqnxt_edge import create_model, load_checkpoint
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("sqnxt-edge")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0"

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .errors import SqnxtError
from .models import create_model, list_models, model_stats, resolve_name

__all__ = [
    "__version__", "SqnxtError", "create_model", "list_models", "model_stats", "resolve_name",
    "Checkpoint", "load_checkpoint", "save_checkpoint",
]
