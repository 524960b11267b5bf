"""Skip locally, fail in CI: a test that needs a tool (sshd, QEMU, an extra) skips with its reason on a developer's
machine, but fails where `SQNXT_EDGE_REQUIRE` names that tool (`.ci/run` sets it), so CI cannot go green by skipping
what it must run.

    from needs import need
    need("qemu", shutil.which("qemu-aarch64-static") is not None, "qemu-user-static is not installed")
"""

from __future__ import annotations

import os

import pytest

__all__ = ["need", "required"]

REQUIRE_VAR = "SQNXT_EDGE_REQUIRE"  # comma-separated names: ssh, qemu, tflite, openvino, ... or "all"


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
