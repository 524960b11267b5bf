"""`.pte` through ExecuTorch's runtime (the `executorch` pip wheel), XNNPACK delegate.

Import: the C++ binding module itself (`executorch.extension.pybindings._portable_lib`), which `executorch.runtime`
wraps: the wrapper imports `executorch.exir` (the whole compiler: 14 s beside torch's 4 s, measured here under load)
only to issue an ExperimentalWarning. So a board needs torch and `pip install --no-deps executorch`, none of the
compiler's dependencies. The binding links libtorch; torch is imported too (its tensors are the binding's I/O).

Threads: ExecuTorch has no per-program or per-call thread setting. Every XNNPACK program runs on one process-wide
pthreadpool, sized at first use to what the pip build counts as performance cores (its CMake default: cpuinfo's
processors minus any Cortex-A53/A55/A57/A520; that query logs the cpuinfo lines). `_unsafe_reset_threadpool(n)`
replaces that pool, and an XNNPACK program keeps the pool it was loaded with (`xnn_create_runtime_v4`). So the
count is set before a program is loaded, and never while another loaded program is alive (a RunnerError then:
resetting would free a pool that program still uses). The runner measures each artifact in its own process, so a
bench always gets the count it asks for. threads=None keeps the pool as it is; `threads` says what it has.

ExecuTorch's C++ logs (cpuinfo lines at the first load) go to stderr: the runner's JSON on stdout stays clean.
"""

from __future__ import annotations

import weakref

import numpy as np

from ..contract import RunnerError
from .base import BaseBackend, installed, need, version

try:  # imported with this module, so the harness's bare-runtime baseline (`bare`) holds them too
    if not installed("executorch"):
        need("executorch")  # the error names the package
    _torch = need("torch")  # first: without it the binding fails to load libtorch, which would read as "no executorch"
    _lib = need("executorch")
    _missing: RunnerError | None = None
except RunnerError as exc:  # said when a program is opened; the module itself stays importable
    _lib = _torch = None
    _missing = exc

# ExecuTorch's ScalarType codes (c10's numbering) -> numpy
_DTYPES = {0: np.uint8, 1: np.int8, 3: np.int32, 4: np.int64, 5: np.float16, 6: np.float32}
_LOADED: weakref.WeakSet = weakref.WeakSet()  # programs alive in this process: they hold the current thread pool


class ExecuTorch(BaseBackend):
    """One `.pte` program's `forward` method; NCHW float32 in, logits out, one batch size (planned at export)."""

    no_profile = (
        "the executorch pip wheel is built without the event tracer (EXECUTORCH_ENABLE_EVENT_TRACER), so ETDump "
        "records no per-operator events for executorch.devtools' Inspector"
    )

    def __init__(self, path: str, threads: int | None, runtime: str = "executorch"):
        if _lib is None:
            assert _missing is not None
            raise _missing
        lib = _lib
        if threads:
            _set_threads(lib, int(threads))
        program = lib._load_program(str(path))
        names = [program.get_method_name(i) for i in range(program.num_methods())]
        if "forward" not in names:
            raise RunnerError(f"{path}: no forward method in the program (it has: {', '.join(names) or 'none'})")
        self.program, self.method = program, program.load_method("forward")
        meta = program.method_meta("forward")
        if meta.num_inputs() != 1 or meta.num_outputs() < 1:
            raise RunnerError(f"{path}: forward takes {meta.num_inputs()} inputs; the runner feeds one image batch")
        inp = meta.input_tensor_meta(0)
        self.version = version(runtime, lib)
        self.threads = int(lib._threadpool_get_thread_count())
        self.input_name, self.output_name = "forward.input0", "forward.output0"
        self.input_shape = [int(d) for d in inp.sizes()]
        self.input_dtype = _DTYPES.get(int(inp.dtype()), np.float32)
        self.quant, self.dynamic_batch = None, False
        self.embedded: dict = {}
        _LOADED.add(self)

    def run(self, x: np.ndarray) -> np.ndarray:
        """One inference on a prepared batch: the model's output as the runtime returns it."""
        out = self.method.call((_torch.from_numpy(np.ascontiguousarray(x)),))
        return out[0].numpy()


def _set_threads(lib, threads: int) -> None:
    """Size the process-wide pool before a program is loaded; refuse when a live program holds the current one."""
    current = int(lib._threadpool_get_thread_count())
    if current == threads:
        return
    alive = len(_LOADED)
    if alive:
        raise RunnerError(
            f"ExecuTorch runs every program on one process-wide thread pool ({current} threads), held by "
            f"{alive} loaded program(s): it cannot change to {threads} threads in this process"
        )
    lib._unsafe_reset_threadpool(threads)
