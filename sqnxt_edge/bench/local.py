"""What a bench adds to a local run: the PyTorch baseline as a runtime plugin of the runner (the runner cannot rebuild
a model from a checkpoint), named for the child it starts. Running the runner is the target's job
(`devices.Target`: runner.pyz in a child process, exactly what a board receives).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .. import runner

__all__ = ["PLUGINS", "plugin_env"]

PLUGINS = {"torch": "sqnxt_edge.bench.torch_runtime:TorchBackend"}  # the runner's PyTorch baseline


def plugin_env() -> dict[str, str]:
    """$SQNXT_EDGE_RUNTIME_PLUGINS naming the PyTorch baseline, and $PYTHONPATH with this package's folder first: the
    plugins it names are this package's, whatever else is installed (the runner itself needs nothing from it)."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join([root, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]])
    return {runner.PLUGINS_VAR: json.dumps(PLUGINS), "PYTHONPATH": path}
