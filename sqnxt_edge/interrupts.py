"""How a run stops: SIGTERM and SIGHUP become the same exception as Ctrl-C.

`timeout`, a CI cancel and `docker stop` send SIGTERM; a closed terminal or a dropped SSH session sends SIGHUP. By
default both kill Python on the spot, so no `finally` runs: staging folders, remote temp folders and child processes
stay behind. Inside `stop_on_signals()` they raise `Interrupted` (a KeyboardInterrupt), so every cleanup that
already runs for Ctrl-C runs for them too. The process owner (the CLI) enters it; importing the package installs no
handler. Standard library only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["STOP_SIGNALS", "Interrupted", "signal_of", "exit_code", "describe", "stop_on_signals", "kill_process_group"]

STOP_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s)


class Interrupted(KeyboardInterrupt):
    """A stop request delivered by a signal; `signum` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def signal_of(exc: BaseException) -> int:
    """The signal behind an interruption (Ctrl-C, i.e. SIGINT, for a plain KeyboardInterrupt)."""
    return getattr(exc, "signum", int(signal.SIGINT))


def exit_code(exc: BaseException) -> int:
    """128 + signal number: what a shell reports for a process stopped by that signal (130 for Ctrl-C)."""
    return 128 + signal_of(exc)


def describe(exc: BaseException) -> str:
    """ "interrupted" for Ctrl-C (as before), "stopped by SIGTERM" and the like for the others."""
    signum = signal_of(exc)
    return "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"


@contextmanager
def stop_on_signals(signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Within the block, the first of `signals` raises `Interrupted` in the main thread; later ones are ignored so
    the cleanup they triggered can finish (SIGKILL still ends everything). A signal the parent set to be ignored
    (`nohup` ignores SIGHUP) stays ignored. Outside the main thread this does nothing (Python allows handlers there
    only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping: list[int] = []

    def handler(signum, frame):
        if stopping:
            return
        stopping.append(signum)
        raise Interrupted(signum)

    previous = {}
    try:
        for signum in signals:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, handler)
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)


def kill_process_group(proc: subprocess.Popen, grace: float = 2.0) -> None:
    """Stop a child started with `start_new_session=True` and everything it started: SIGTERM to its process group,
    SIGKILL to whatever is left after `grace` seconds; reaps the child (draining its pipes, if it has any, so it
    cannot block on a full one). Never raises for a group that is gone (Linux keeps a group's id reserved while any
    member lives, so the id cannot name a stranger)."""
    piped = any(pipe is not None for pipe in (proc.stdout, proc.stderr))
    for sig in (signal.SIGTERM, signal.SIGKILL):  # SIGKILL too: the child may be gone while its children live
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.communicate(timeout=grace) if piped else proc.wait(timeout=grace)
        except (subprocess.TimeoutExpired, ValueError):  # ValueError: pipes already closed by an earlier read
            pass
    deadline = time.monotonic() + grace  # SIGKILL is delivered when a member next runs: wait until the group is gone
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.01)
