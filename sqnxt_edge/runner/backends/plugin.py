"""Backends a harness adds: $SQNXT_EDGE_RUNTIME_PLUGINS = {runtime: "module:Class"} (the bench names its PyTorch
backend there, which rebuilds a model from a checkpoint and so needs the package). The runner never imports the
package itself; the class implements `base.Backend` like any built-in backend."""

from __future__ import annotations

import importlib
import os

from ..contract import PLUGINS_VAR, RunnerError, decode
from .base import need


def plugin_class(runtime: str) -> type:
    """The backend class a harness names for `runtime` in $SQNXT_EDGE_RUNTIME_PLUGINS."""
    need(runtime)
    plugins = decode(os.environ.get(PLUGINS_VAR) or "{}")
    spec = plugins.get(runtime) if isinstance(plugins, dict) else None
    if not spec:
        raise RunnerError(f"{runtime} runs through its harness only (sqnxt-edge bench rebuilds the model)")
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)
