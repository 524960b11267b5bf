"""A throwaway OpenSSH server on 127.0.0.1 for the device tests (real sshd, real ssh/scp, temp keys).

`LoopbackSshd(folder).start()` generates a host key and a user key, writes sshd_config (key login only, a free
port) and an ssh client config (-F) that trusts the new host key on first use and keeps known_hosts in the folder,
so the real ~/.ssh is never read or written. `stop()` kills the server whatever state it is in.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/usr/bin/sshd")


def find_sshd() -> str | None:
    for cand in SSHD_CANDIDATES:
        if os.access(cand, os.X_OK):
            return cand
    return shutil.which("sshd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sqnxt-edge-test", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )


class LoopbackSshd:
    def __init__(self, folder: Path, sftp: bool = True):
        self.folder = Path(folder)
        self.sftp = sftp
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = self.folder / "sshd.log"
        self.client_config = self.folder / "ssh_config"
        self.user_key = self.folder / "id_ed25519"

    def start(self, wait: float = 10.0) -> LoopbackSshd:
        sshd = find_sshd()
        if not sshd:
            raise RuntimeError("sshd not found (apt-get install openssh-server)")
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
        self.folder.mkdir(parents=True, exist_ok=True)
        host_key = self.folder / "host_ed25519"
        _keygen(host_key)
        _keygen(self.user_key)
        auth = self.folder / "authorized_keys"
        auth.write_text((self.folder / "id_ed25519.pub").read_text())
        auth.chmod(0o600)
        config = self.folder / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    "ListenAddress 127.0.0.1",
                    f"Port {self.port}",
                    f"HostKey {host_key}",
                    f"AuthorizedKeysFile {auth}",
                    f"PidFile {self.folder / 'sshd.pid'}",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin prohibit-password",
                    "AllowTcpForwarding no",
                    "X11Forwarding no",
                    "PrintMotd no",
                    "LogLevel ERROR",
                    "MaxStartups 50",
                    "Subsystem sftp internal-sftp" if self.sftp else "",
                    "",
                ]
            )
        )
        self.client_config.write_text(
            "\n".join(
                [
                    "Host *",
                    "  HostName 127.0.0.1",
                    f"  Port {self.port}",
                    f"  IdentityFile {self.user_key}",
                    "  IdentitiesOnly yes",
                    "  StrictHostKeyChecking accept-new",
                    f"  UserKnownHostsFile {self.folder / 'known_hosts'}",
                    "  GlobalKnownHostsFile /dev/null",
                    "  LogLevel ERROR",
                    "",
                ]
            )
        )
        with open(self.log, "wb") as log:  # sshd keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text(errors='replace').strip()[:500]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not listen on port {self.port} within {wait} s")

    def stop(self) -> None:
        if self.proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        self.proc = None

    def device_toml(self, name: str = "loop", python: str | None = None, **extra) -> str:
        """A devices.toml table that reaches this server through the test's own ssh config."""
        from sqnxt_edge.devices import Device, render_toml

        fields = {
            "python": python or sys.executable,
            "ssh_config": str(self.client_config),
            "user": os.environ.get("USER") or _whoami(),
            "connect_timeout": 5.0,
            **extra,
        }
        return render_toml(Device(name=name, host="127.0.0.1", **fields))


def _whoami() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name
