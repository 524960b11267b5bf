"""sqnxt-edge: SqueezeNext and SqueezeNet from training to a benchmarked int8 model on an edge board.

    from sqnxt_edge import create_model, load_checkpoint
"""

import os as _os
from importlib.metadata import PackageNotFoundError, version as _version

# OpenMP threads that spin while waiting steal the cores from each other and from the measuring child processes;
# measured 4.5x faster training on a loaded 2-core machine. Must be set before torch loads.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
