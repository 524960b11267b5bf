"""Run commands on a board through the user's own OpenSSH client (`ssh`, `scp`), never through a local shell.

Why OpenSSH and not a Python SSH library: the user's `~/.ssh/config` (aliases, ProxyJump, keys, agents, known hosts)
then just works, and host-key checking stays the user's decision (we never pass StrictHostKeyChecking).

Safety: argv lists only (no local shell); every remote command is ONE POSIX `sh -c` script whose every path and
argument is `shlex.quote`d; `BatchMode=yes` (no password or passphrase prompts, so nothing secret to log);
connect + keep-alive timeouts, an overall timeout after which the whole local process group is killed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import DeviceError
from ..interrupts import kill_process_group
from .registry import Device

__all__ = ["SshResult", "ssh_options", "ssh_argv", "scp_argv", "run_ssh", "scp_upload", "explain_ssh_failure"]

# Exit status of ssh itself (not the remote command) when the connection or login failed.
SSH_FAILED = 255


@dataclass
class SshResult:
    """What an ssh call returned: exit code and decoded output."""

    returncode: int
    stdout: str
    stderr: str


def _client(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise DeviceError(f"the OpenSSH client '{name}' is not installed here (apt-get install openssh-client)")
    return path


def ssh_options(device: Device) -> list[str]:
    """Options shared by ssh and scp: ours first (ssh keeps the first value it sees), then the device's own."""
    opts: list[str] = []
    if device.ssh_config:
        opts += ["-F", os.path.expanduser(device.ssh_config)]
    opts += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, round(device.connect_timeout))}"]
    if device.port:
        opts += ["-o", f"Port={device.port}"]
    if device.user:
        opts += ["-o", f"User={device.user}"]
    if device.identity:
        opts += ["-i", os.path.expanduser(device.identity)]
    for opt in device.ssh_options:
        opts += ["-o", opt]
    opts += ["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2"]
    return opts


def ssh_argv(device: Device, script: str) -> list[str]:
    """ssh argv that runs `script` under the board's POSIX sh (whatever the login shell is)."""
    return [_client("ssh"), "-T", *ssh_options(device), "--", device.host, "sh -c " + shlex.quote(script)]


def _scp_host(host: str) -> str:
    if "@" in host:
        user, _, rest = host.rpartition("@")
        return f"{user}@{_scp_host(rest)}"
    return f"[{host}]" if ":" in host else host


def scp_argv(device: Device, sources: list[Path], remote_dir: str, legacy: bool = False) -> list[str]:
    """scp argv copying `sources` (made absolute, so a ':' in a name is never taken for a host) into remote_dir.
    `legacy` (-O) uses the old scp protocol, for servers without the SFTP subsystem (dropbear, stripped sshd)."""
    local = [str(Path(s).absolute()) for s in sources]
    return [
        _client("scp"),
        "-B",
        "-q",
        "-r",
        *(["-O"] if legacy else []),
        *ssh_options(device),
        "--",
        *local,
        f"{_scp_host(device.host)}:{remote_dir}/",
    ]


def _run(argv: list[str], timeout: float) -> SshResult:
    """Run argv in its own process group; on timeout kill the whole group and raise TimeoutError."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        text=True,
        errors="replace",
    )
    try:
        out, err = proc.communicate(timeout=max(0.1, timeout))
    except subprocess.TimeoutExpired:
        kill_process_group(proc)
        raise TimeoutError from None
    except BaseException:  # Ctrl-C: leave nothing behind
        kill_process_group(proc)
        raise
    return SshResult(proc.returncode, out, err)


def _first_message(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("Warning: Permanently added", "** ")):
            return line[:300]
    return ""


def explain_ssh_failure(device: Device, stderr: str, what: str = "the command") -> str:
    """One line for an ssh exit status 255: refused, auth, unknown host, host key, unreachable ..."""
    where = f"device {device.name!r} ({device.target}{':' + str(device.port) if device.port else ''})"
    low = stderr.lower()
    if "connection refused" in low:
        return f"{where}: connection refused (is sshd running there, and is the port right?)"
    if "permission denied" in low or "too many authentication failures" in low:
        return (
            f"{where}: authentication refused; key-based login is needed (BatchMode, no password prompts): "
            f"ssh-copy-id {device.target}, or set identity in devices.toml"
        )
    if "could not resolve hostname" in low or "name or service not known" in low:
        return f"{where}: unknown host name (check host, or the alias in your ssh config)"
    if "host key verification failed" in low or "remote host identification has changed" in low:
        return (
            f"{where}: host key not trusted; connect once with `ssh {device.target}` to check and accept it "
            "(host-key checking follows your ssh config)"
        )
    if "timed out" in low or "no route to host" in low or "network is unreachable" in low:
        return f"{where}: unreachable ({_first_message(stderr)})"
    if any(s in low for s in ("closed by remote host", "connection reset", "broken pipe", "server not responding")):
        # connected, then lost: the board's watchdog (or its `timeout`) stops the runner and deletes the folder
        return f"{where}: connection lost during {what} ({_first_message(stderr)})"
    return f"{where}: ssh failed: {_first_message(stderr) or 'no message'}"


def run_ssh(device: Device, script: str, timeout: float, what: str = "command") -> SshResult:
    """Run `script` on the board. Connection/login failures and timeouts raise one-line DeviceErrors;
    the remote command's own exit status is returned for the caller to judge."""
    try:
        res = _run(ssh_argv(device, script), timeout)
    except TimeoutError:
        raise DeviceError(
            f"device {device.name!r}: timed out after {timeout:.0f} s during {what} "
            "(board hung or too slow; raise timeout in devices.toml)"
        ) from None
    if res.returncode == SSH_FAILED:
        raise DeviceError(explain_ssh_failure(device, res.stderr, what))
    return res


def _no_sftp(stderr: str) -> bool:
    low = stderr.lower()
    return "subsystem request failed" in low or low.strip().endswith("connection closed")


def scp_upload(device: Device, sources: list[Path], remote_dir: str, timeout: float) -> None:
    """Copy files/folders into `remote_dir` on the board (which must exist)."""
    deadline = time.monotonic() + timeout
    try:
        res = _run(scp_argv(device, sources, remote_dir), timeout)
        if res.returncode != 0 and _no_sftp(res.stderr):  # the connection worked (preflight did): retry without SFTP
            res = _run(scp_argv(device, sources, remote_dir, legacy=True), deadline - time.monotonic())
    except TimeoutError:
        raise DeviceError(f"device {device.name!r}: timed out after {timeout:.0f} s copying files") from None
    if res.returncode != 0:
        remote_side = [ln for ln in res.stderr.splitlines() if ln.startswith("scp: ")]
        if not remote_side:  # the connection or login failed, not the copy itself
            raise DeviceError(explain_ssh_failure(device, res.stderr, "copying files"))
        raise DeviceError(
            f"device {device.name!r}: copying files failed: {_first_message(res.stderr) or res.returncode}"
        )
