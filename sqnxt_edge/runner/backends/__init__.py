"""The runtimes the runner drives: which one runs an artifact (`runtimes_for`) and opening it (`open_backend`).

Each backend module is imported only when a model asks for it, so a board needs only the runtimes it uses.
"""

from __future__ import annotations

import importlib
import os

from ..contract import SUFFIXES, RunnerError, suffix_of
from .base import FACTS, RUNTIMES, Backend, BaseBackend, Runtime, check, installed, need, version

__all__ = [
    "Backend",
    "BaseBackend",
    "FACTS",
    "RUNTIMES",
    "Runtime",
    "backend_class",
    "installed",
    "known",
    "need",
    "open_backend",
    "runtimes_for",
    "version",
]


def known(runtime: str) -> str:
    """`runtime` when the runner knows it (or it is "auto"); else a RunnerError listing the choices."""
    if runtime not in ("auto", *RUNTIMES):
        raise RunnerError(f"unknown runtime {runtime!r}; choose auto or {', '.join(RUNTIMES)}")
    return runtime


def runtimes_for(path: str, runtime: str = "auto", every: bool = False) -> list[str]:
    """The runtime(s) that run `path`: the asked one, else the first installed one; `every` gives one per engine
    (onnxruntime and OpenVINO for .onnx), so a bench shows the fastest way to run each artifact here."""
    fmt, _, names = SUFFIXES[suffix_of(path)]
    if known(runtime) != "auto":
        if runtime not in names:
            raise RunnerError(f"{os.path.basename(str(path))}: {runtime} cannot run {fmt} files")
        return [runtime]
    found, engines = [], set()
    for name in names:
        if installed(name) and RUNTIMES[name].engine not in engines:
            found.append(name)
            engines.add(RUNTIMES[name].engine)
    return (found if every else found[:1]) or [names[0]]


def backend_class(runtime: str) -> type:
    """The class that opens `runtime`'s models, its module imported now (a plugin's from the harness's table)."""
    row = RUNTIMES[known(runtime)]
    if row.backend is None:
        from .plugin import plugin_class

        return plugin_class(runtime)
    module, _, name = row.backend.partition(":")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def open_backend(runtime: str, path: str, threads: int | None) -> Backend:
    """`path` opened by `runtime` with `threads` (None: the runtime's default), its facts checked."""
    backend = backend_class(runtime)(path, threads, runtime)
    check(backend, runtime)
    return backend
