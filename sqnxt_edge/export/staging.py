"""The output folder's safety rails: one export at a time (a lock), staging folders that name their owner, and a
journal that lets a later export finish the bookkeeping of one that was killed.

- Lock: `fcntl.flock` on `<out>/.export.lock`, held for the whole export. A second export into the same folder waits
  (`ExportConfig.lock_wait` seconds, then one line). The holder unlinks the file before it releases it; a waiter that
  then wins the lock on the unlinked file sees that the path no longer names it and tries again.
- Staging folder: `.export-<pid>-<start ticks>-<boot id>-<host>-XXXXXXXX`. Its owner is gone when it ran on this
  host and this boot id differs (the machine rebooted), its pid is free, or its pid now belongs to a process that
  started at another time. Only such folders are removed by a later export; a live owner's folder, another host's,
  or one without an owner in its name is never touched.
- Journal: before a verified artifact is renamed into the output folder, its manifest entry is written into the
  staging folder. Whatever moment the owner dies at (even SIGKILL, between the rename and the manifest write), the
  next export adopts the entries whose file is in place with the recorded sha256, moves a sidecar left behind, and
  writes them into the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..artifacts import atomic_write, descriptions, sha256_file
from ..errors import ExportError

try:
    import fcntl
except ImportError:  # Windows: no flock; exports there are not serialised
    fcntl = None  # type: ignore[assignment]  # a module or None; every use checks for None first

__all__ = ["LOCK_NAME", "Owner", "export_lock", "make_stage", "stale_stages", "journal", "adopt"]

LOCK_NAME = ".export.lock"
STAGE_PREFIX = ".export-"
JOURNAL_SUFFIX = ".entry.json"
_STAGE_RE = re.compile(r"^\.export-(\d+)-(\d+)-([0-9a-f]{8})-([0-9a-f]{8})-[A-Za-z0-9_]+$")


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:8]
    except OSError:
        return "0" * 8


def _start_ticks(pid: int) -> int:
    """When `pid` started, in clock ticks since boot (/proc/PID/stat field 22); 0 where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Owner:
    """The export process a staging folder belongs to (pid, start time, boot id, host): tells a dead owner's apart."""

    pid: int
    start: int
    boot: str
    host: str

    @classmethod
    def me(cls) -> Owner:
        """This process as an owner."""
        return cls(os.getpid(), _start_ticks(os.getpid()), _boot_id(), _host())

    @classmethod
    def of(cls, stage: Path) -> Owner | None:
        """The owner named in a staging folder's name, or None for a folder without one."""
        m = _STAGE_RE.match(stage.name)
        return cls(int(m[1]), int(m[2]), m[3], m[4]) if m else None

    def token(self) -> str:
        """The owner as the part of a staging folder's name that identifies it."""
        return f"{self.pid}-{self.start}-{self.boot}-{self.host}"

    def is_gone(self) -> bool:
        """True only when this owner's process has certainly ended."""
        here = Owner.me()
        if self.host != here.host:
            return False  # another machine sharing the folder: nothing to check it with
        if self.boot != here.boot:
            return "0" * 8 not in (self.boot, here.boot)  # rebooted since; unknown boot ids prove nothing
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # alive, someone else's
        now = _start_ticks(self.pid)
        return bool(self.start and now and now != self.start)  # the pid was reused by a later process


def make_stage(out: Path) -> Path:
    """A fresh hidden staging folder in `out` (same filesystem: renames out of it are atomic), named after us."""
    return Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{Owner.me().token()}-", dir=out))


def stale_stages(out: Path) -> list[Path]:
    """Staging folders in `out` whose owner is certainly gone."""
    found = []
    for path in sorted(out.glob(f"{STAGE_PREFIX}*")):
        owner = Owner.of(path)
        if path.is_dir() and owner is not None and owner.is_gone():
            found.append(path)
    return found


def journal(stage: Path, entry: dict, manifest_args: dict) -> None:
    """Record, before the rename, what the manifest will say about a verified artifact."""
    text = json.dumps({"entry": entry, "manifest": manifest_args}, default=str)
    atomic_write(stage / f"{entry['path']}{JOURNAL_SUFFIX}", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def adopt(stage: Path, out: Path) -> list[tuple[dict, dict]]:
    """(entry, manifest args) of every journalled artifact of `stage` that lies in `out` exactly as verified (with
    the files it needs beside it, its `companions`, which `move_artifact` renames first); a sidecar (or .ort operator
    config) that did not make it out of the staging folder is moved next to its artifact."""
    adopted = []
    for path in sorted(stage.glob(f"*{JOURNAL_SUFFIX}")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            entry, args = record["entry"], record["manifest"]
            dest = out / entry["path"]
            if not (dest.is_file() and dest.stat().st_size == entry["bytes"] and sha256_file(dest) == entry["sha256"]):
                continue
            parts = entry.get("companions") or []
            if not all(sha256_file(out / part["path"]) == part["sha256"] for part in parts if part.get("sha256")):
                continue
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for side, there in zip(descriptions(stage / entry["path"]), descriptions(dest)):
            if side.is_file():
                os.replace(side, there)
        adopted.append((entry, args))
    return adopted


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def _acquire(path: Path, out: Path, wait: float, say: Callable[[str], None]) -> int | None:
    """A descriptor of `path` holding the lock, or None on a filesystem without flock."""
    deadline = time.monotonic() + max(0.0, wait)
    told = False
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ExportError(f"cannot create the lock file {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise ExportError(
                    f"another export is writing into {out}{_holder(path)}; waited {wait:g} s "
                    "(--lock-wait): try again when it has finished, or export elsewhere with -o"
                ) from None
            if not told:
                say(f"waiting for another export into {out}{_holder(path)} to finish (up to {wait:g} s)")
                told = True
            time.sleep(0.2)
            continue
        except OSError as exc:
            os.close(fd)
            say(f"warning: cannot lock {path} ({exc.strerror or exc}); concurrent exports here are not serialised")
            return None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, path):
            return fd
        os.close(fd)  # its previous holder unlinked this file before releasing it: lock the current one


@contextmanager
def export_lock(out: Path, wait: float, say: Callable[[str], None]) -> Iterator[None]:
    """Hold `<out>/.export.lock` for the block; wait up to `wait` seconds for another export to finish."""
    path = out / LOCK_NAME
    fd = _acquire(path, out, wait, say) if fcntl is not None else None
    if fd is None:  # no flock here (Windows, some network filesystems): unserialised
        yield
        return
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        try:
            os.unlink(path)  # while still holding it: a waiter on this file then retries on a fresh one
        except OSError:
            pass
        os.close(fd)
