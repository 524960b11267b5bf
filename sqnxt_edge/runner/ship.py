"""The runner as ONE file: a zipapp (`runner.pyz`) built from this package on the fly, run as
`python runner.pyz ARGS` by a board (Python >= 3.9 with numpy and its runtimes, nothing else), an emulated board and
this machine alike, so every figure comes from identical code.

Deterministic bytes (sorted entries, fixed timestamps and modes), so the file is named by its content hash and
built once per change of the code: repeated runs reuse it. This module is the one part never shipped.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

from .contract import RUNNER_VERSION

ARCHIVE_PACKAGE = "sqnxt_runner"  # the package's name inside the .pyz: never shadows `sqnxt_edge` (plugins import it)
PYZ_NAME = "runner.pyz"  # what a board's job folder calls it
_HERE = Path(__file__).resolve().parent
_NOT_SHIPPED = {"ship.py", "__main__.py"}
_MAIN = (
    "# sqnxt-edge runner: python runner.pyz --help\n"
    "import sys\n\n"
    f"from {ARCHIVE_PACKAGE}.cli import main\n\n"
    "sys.exit(main())\n"
)
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold: no build time in the bytes


def sources() -> list[tuple[str, bytes]]:
    """(name in the archive, bytes) of every shipped module, sorted: the package's .py files but this one."""
    names = sorted(p.relative_to(_HERE).as_posix() for p in _HERE.rglob("*.py"))
    out = [("__main__.py", _MAIN.encode())]
    out += [(f"{ARCHIVE_PACKAGE}/{name}", (_HERE / name).read_bytes()) for name in names if name not in _NOT_SHIPPED]
    return out


def pyz_bytes() -> bytes:
    """The .pyz, in memory: a shebang line, then a zip of `sources()` with no time or owner in it."""
    buf = io.BytesIO()
    buf.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in sources():
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data, compresslevel=9)
    return buf.getvalue()


def cache_folder() -> Path:
    """Where built runners are kept: the package's cache rule ($SQNXT_EDGE_CACHE, else $XDG_CACHE_HOME or ~/.cache,
    then sqnxt-edge), in `runner/`. Repeated here because the runner imports nothing from the package."""
    if os.environ.get("SQNXT_EDGE_CACHE"):
        base = Path(os.environ["SQNXT_EDGE_CACHE"]).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sqnxt-edge"
    return base.absolute() / "runner"


def runner_pyz(folder: str | os.PathLike | None = None) -> Path:
    """The built runner, `runner-<version>-<content hash>.pyz` in `folder` (default: `cache_folder()`); written
    once (temp file + rename, so concurrent builders never see half a file), then reused."""
    data = pyz_bytes()
    folder = Path(folder) if folder is not None else cache_folder()
    path = folder / f"runner-{RUNNER_VERSION}-{hashlib.sha256(data).hexdigest()[:16]}.pyz"
    if path.is_file() and path.read_bytes() == data:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".runner-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
