"""The user's cache folder for what sqnxt-edge builds or measures once per machine (emulated boards, the int8 choice).

One place, so `SQNXT_EDGE_CACHE` moves all of it (tests, CI, a shared volume)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_VAR = "SQNXT_EDGE_CACHE"


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """`override`, $SQNXT_EDGE_CACHE, else $XDG_CACHE_HOME (~/.cache)/sqnxt-edge."""
    if override:
        return Path(override).expanduser().absolute()
    if os.environ.get(CACHE_VAR):
        return Path(os.environ[CACHE_VAR]).expanduser().absolute()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base).absolute() / "sqnxt-edge"
