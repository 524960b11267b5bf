"""Skip locally, fail in CI: a test that needs a tool (sshd, QEMU, an extra) skips with its reason on a developer's
machine, but fails where `SQNXT_EDGE_REQUIRE` names that tool (`.ci/run` sets it), so CI cannot go green by skipping
what it must run.

    from needs import need, mark, module
    need("qemu", shutil.which("qemu-aarch64-static") is not None, "qemu-user-static is not installed")
    pytestmark = mark("tflite", module("litert_torch"), "litert-torch is not installed (pip install '.[tflite]')")

Names: ssh, qemu, tflite, openvino, opencv, executorch, ncnn, node, chromium (or "all"). A skip that is not about a
missing tool (a version the product does not target, an inverse condition) stays a plain `pytest.skip`.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

__all__ = ["need", "required", "mark", "module", "register", "check_marks"]

REQUIRE_VAR = "SQNXT_EDGE_REQUIRE"  # comma-separated names: ssh, qemu, tflite, openvino, opencv, executorch ... "all"
MARK = "need"


def required(name: str) -> bool:
    """Whether this run must have `name` (listed in $SQNXT_EDGE_REQUIRE, or the list is "all")."""
    listed = {part.strip() for part in os.environ.get(REQUIRE_VAR, "").split(",") if part.strip()}
    return name in listed or "all" in listed


def need(name: str, ok: bool, reason: str) -> None:
    """Return when `ok`; otherwise skip with `reason`, or fail when this run requires `name`."""
    if ok:
        return
    if required(name):
        pytest.fail(f"{reason} ({REQUIRE_VAR} requires {name!r}: it must not be skipped here)", pytrace=False)
    pytest.skip(reason)


def mark(name: str, ok: bool, reason: str) -> pytest.MarkDecorator:
    """`need` as a decorator or a module's `pytestmark`: checked when each test it marks is set up."""
    return getattr(pytest.mark, MARK)(name, bool(ok), reason)


def module(name: str) -> bool:
    """Whether `name` can be imported (without importing it: the converters are slow to load)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def register(config) -> None:
    """For conftest's `pytest_configure`: declare the marker."""
    config.addinivalue_line("markers", f"{MARK}(name, ok, reason): needs a tool; skips, or fails under {REQUIRE_VAR}")


def check_marks(item) -> None:
    """For conftest's `pytest_runtest_setup`: apply every `need` mark of the test."""
    for m in item.iter_markers(MARK):
        need(*m.args, **m.kwargs)
