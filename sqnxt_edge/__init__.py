"""sqnxt-edge: SqueezeNext and SqueezeNet from training to a benchmarked int8 model on an edge board.

    from sqnxt_edge import create_model, load_checkpoint

Importing the package changes no process-wide setting and loads no framework: the names below are resolved on
first use (PEP 562), so `sqnxt-edge --help` and the device commands start without torch.
"""

from importlib import import_module as _import_module

from ._version import __version__
from .errors import SqnxtError

_LAZY = {
    "create_model": "models",
    "list_models": "models",
    "model_stats": "models",
    "resolve_name": "models",
    "Checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
}

__all__ = ["__version__", "SqnxtError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(_import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
