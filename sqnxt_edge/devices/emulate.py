"""Emulated boards: QEMU user mode, pinned to the board's CPU, with that board's view of its CPU, so the runtimes
pick the kernels they would pick on the board. The CPUs themselves (ARM cores, x86 classes) are data in `cpus`.

An ARM board runs the cached aarch64 user space (`rootfs`) under `qemu-aarch64`; an x86 class runs this machine's
own Python (`sys.executable`, with its installed runtimes) under `qemu-x86_64`, which answers CPUID as the older CPU
(AVX2 without AVX-512, or SSE4.2 only): onnxruntime then dispatches to that CPU's int8 kernels.

Why the CPU view is faked: qemu 7.2 shows the guest the host's /proc/cpuinfo; on ARM, pytorch-cpuinfo (inside
onnxruntime and XNNPACK) then fails (XNNPACK silently off) or crashes onnxruntime, and on x86 the runner would report
the host's avx512 and vnni. `qemu -L ROOT` redirects an absolute path to ROOT/path whenever that file exists, so each
board's folder holds the files its Linux shows (/proc/cpuinfo, the cpu lists and topology, cpufreq limits, a Pi's
device-tree model); an ARM board links everything else to the shared rootfs, an x86 board holds nothing else (every
other path falls through to this machine). `-cpu` pins the ISA the guest sees (AT_HWCAP, CPUID): QEMU's default
`max` would advertise dotprod, i8mm, SVE ... that a Cortex-A72 lacks. See shared/arm-emulation.md.

A board is registered in devices.toml like any other device (`emulate = PROFILE`, `rootfs = FOLDER`), and the same
runner.pyz runs on it, unchanged: `$SQNXT_EDGE_LAUNCHER` makes its child processes start through qemu (an emulated
Python cannot exec an aarch64 binary without binfmt_misc, and an x86 one would run natively), and
`$SQNXT_EDGE_EMULATION` marks every environment it reports as emulated.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .. import runner
from ..errors import DeviceError
from ..interrupts import kill_process_group
from .cpus import CORES, EMULATED, QEMU, X86_CLASSES, Core, X86Class, cpu_for, view
from .profiles import PROFILES
from .registry import Device, add_device, devices_path, get_device, load_devices, remove_device
from .rootfs import MARKER, SITE, cache_dir, ensure_rootfs, locked, require_tools, rmtree, rootfs_info, rootfs_path

__all__ = [
    "CORES",
    "X86_CLASSES",
    "EMULATED",
    "emulate_device",
    "command",
    "execute_emulated",
    "unregister",
    "board_info",
]

BOARD_FILE = ".sqnxt-edge-board.json"
EMULATED_TIMEOUT = 3600.0  # seconds for one run: emulation is 100-600x slower than the host
# Threads default to 1: the kernels a runtime picks do not depend on it, and under emulation its spinning thread
# pool costs more host CPU than it saves (measured: 2 threads 1.6x, 4 threads 2.7x the CPU time of 1 per image).
Say = Callable[[str], None]


def _board_dir(cache: Path, name: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".-")[:40] or "board"
    return cache / "boards" / f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def board_info(folder: str | Path) -> dict | None:
    """The record an emulated board's folder keeps, or None when it is missing or unreadable."""
    try:
        return json.loads((Path(folder) / BOARD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _make_board(dest: Path, profile: str, rootfs: Path | None, python: str | None = None) -> Path:
    """The board's own folder: its CPU view as files; on ARM every other top-level entry links into the rootfs."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for entry in rootfs.iterdir() if rootfs else ():
            if entry.name not in ("proc", "sys", "dev", "tmp"):
                (tmp / entry.name).symlink_to(entry)
        for path, text in {**view(EMULATED[profile]), **_sensors(EMULATED[profile], tmp, dest)}.items():
            file = tmp / path.lstrip("/")
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text, encoding="utf-8")
        if (tmp / FIRMWARE).is_dir():
            (tmp / FIRMWARE / "vcgencmd").chmod(0o755)
        record = {"profile": profile, "rootfs": str(rootfs) if rootfs else None, "python": python}
        (tmp / BOARD_FILE).write_text(json.dumps(record) + "\n")
        if dest.exists():
            rmtree(dest)
        os.rename(tmp, dest)
    finally:
        rmtree(tmp)
    return dest


FIRMWARE = "firmware"  # a Pi board's `vcgencmd` (a host script: qemu does not redirect the programs it executes)


def _sensors(cpu: Core | X86Class, tmp: Path, dest: Path) -> dict[str, str]:
    """The board's sensors as files, so the run context reads the same paths as on the board: one thermal zone at a
    fixed, cool temperature (an emulator has no sensor; its passive trip point where a Pi's firmware throttles) and,
    for a Raspberry Pi, a `vcgencmd` whose `get_throttled` answers from the file beside it. Tests change those files
    to play a hot or throttled board."""
    zone = "/sys/class/thermal/thermal_zone0/"
    files = {
        zone + "type": "cpu-thermal\n",
        zone + "temp": "45000\n",
        zone + "trip_point_0_type": "passive\n",
        zone + "trip_point_0_temp": "80000\n",
    }
    if isinstance(cpu, Core) and (cpu.model or "").startswith("Raspberry Pi"):
        state = dest / FIRMWARE / "throttled"  # where it will be once the folder is renamed into place
        files[f"/{FIRMWARE}/throttled"] = "0x0\n"
        files[f"/{FIRMWARE}/vcgencmd"] = (
            "#!/bin/sh\n# an emulated Raspberry Pi's firmware tool: get_throttled answers from the file beside it\n"
            f'[ "$1" = get_throttled ] || {{ echo "error=1 error_msg=\\"Command not registered\\""; exit 255; }}\n'
            f"echo throttled=$(cat {shlex.quote(str(state))} 2>/dev/null || echo 0x0)\n"
        )
    return files


def firmware_path(board: Path) -> list[str]:
    """The board folder's firmware tools, for PATH (a host path: the tools run on this machine)."""
    return [str(board / FIRMWARE)] if (board / FIRMWARE).is_dir() else []


def _qemu(cpu: Core | X86Class) -> str:
    return require_tools((QEMU[cpu.arch],))[QEMU[cpu.arch]]


def _qemu_version(qemu: str) -> str:
    try:
        out = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    m = re.search(r"version (\S+)", out)
    return m.group(1) if m else "unknown"


def command(device: Device, args: list[str], tmp: Path) -> tuple[list[str], dict[str, str]]:
    """argv and environment that run the board's Python with `args` under QEMU (temp files in `tmp`)."""
    cpu = cpu_for(device.emulate)
    board = Path(device.rootfs or "")
    info = board_info(board)
    x86 = isinstance(cpu, X86Class)
    python = device.python if device.python.startswith("/") else f"/usr/bin/{device.python}"
    if (
        not info
        or info.get("profile") != device.emulate
        or not (os.access(python, os.X_OK) if x86 else rootfs_info(board))
    ):
        raise DeviceError(
            f"device {device.name!r}: the emulated board in {board} is missing or incomplete"
            + (f" (or its Python {python} is gone)" if x86 else "")
            + f"; build it again with: sqnxt-edge devices emulate {shlex.quote(device.name)} --profile "
            f"{device.emulate} --force"
        )
    qemu = _qemu(cpu)
    launcher = [qemu, "-L", str(board), "-cpu", cpu.qemu_cpu]
    host = runner.cpu_info()
    emulation = {
        "emulator": f"{QEMU[cpu.arch].removesuffix('-static')} {_qemu_version(qemu)} (user mode)",
        "cpu": cpu.qemu_cpu,
        "profile": device.emulate if device.emulate in PROFILES else None,  # a hardware profile, when one fits
        "cpu_class": device.emulate,
        "rootfs": f"this machine's Python ({python})"
        if x86
        else f"Debian {(rootfs_info(board) or {}).get('suite')} arm64",
        "host": {k: host.get(k) for k in ("arch", "model", "cores")},
        "note": "latency, memory and load are the emulator's on this host, not the board's",
    }
    env = {
        "PATH": ":".join([*firmware_path(board), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(tmp),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        **({} if x86 else {"PYTHONPATH": str(board / SITE)}),  # x86: the venv's own site-packages
        runner.LAUNCHER_VAR: shlex.join(launcher),
        runner.EMULATION_VAR: json.dumps(emulation),
    }
    return [*launcher, python if x86 else str(board) + python, *args], env


def _bounded(argv: list[str], timeout: float) -> list[str]:
    """argv under coreutils `timeout` (its own process group, killed whole at the deadline even when this process is
    gone) and util-linux `setpriv --pdeathsig` (SIGTERM when this process dies, which `timeout` passes on to the
    whole group): an emulation never outlives its caller. A tool that is missing is left out."""
    bound, setpriv = shutil.which("timeout"), shutil.which("setpriv")
    if bound:
        argv = [bound, "-k", "5", str(max(1, int(timeout))), *argv]
    if setpriv:
        argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
    return argv


def execute_emulated(device: Device, job, timeout: float):
    """Run a staged job (transport.RemoteJob) on the emulated board within `timeout` s, like a board's own
    `timeout` would: the runner and every child it starts form one process group that is killed whole on timeout,
    interruption, or the caller's death. Temp files live in the job's folder, which the caller deletes."""
    from .ssh import SshResult

    tmp = job.stage.parent / "board-tmp"
    tmp.mkdir(exist_ok=True)
    argv, env = command(device, job.command, tmp)
    bounded = shutil.which("timeout") is not None
    with tempfile.TemporaryFile(dir=tmp) as out, tempfile.TemporaryFile(dir=tmp) as err:
        proc = subprocess.Popen(
            _bounded(argv, timeout),
            cwd=job.stage,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            proc.returncode = 124
        except BaseException:
            kill_process_group(proc, grace=3.0)
            raise
        finally:
            kill_process_group(proc, grace=3.0)  # whatever is left of the group goes with it
        if proc.returncode in (124, 137) or (proc.returncode == -signal.SIGKILL and not bounded):
            raise DeviceError(
                f"device {device.name!r}: timed out after {timeout:.0f} s on the emulated board "
                "(emulation is 100-600x slower than this machine; raise timeout in devices.toml, "
                "or use fewer --runs or images)"
            )
        out.seek(0)
        err.seek(0)
        return SshResult(
            proc.returncode, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
        ), None


def emulate_device(
    name: str,
    profile: str = "rpi4",
    devices_file: str | os.PathLike | None = None,
    force: bool = False,
    rebuild: bool = False,
    threads: int | None = None,
    timeout: float | None = None,
    mirror: str | None = None,
    cache: str | os.PathLike | None = None,
    say: Say | None = None,
) -> tuple[Device, dict]:
    """Build (once, cached) an emulated `profile` board and register it as `name`. Returns the device and what the
    set-up did ({"built": bool, "seconds", "board", "rootfs": its record, None for an x86 class})."""
    say = say or (lambda message: None)
    cpu = cpu_for(profile)
    path = devices_path(devices_file)
    if name in load_devices(path) and not force:
        raise DeviceError(f"device {name!r} already exists in {path}; use --force to replace it")
    started = time.monotonic()
    root = cache_dir(cache) / "emulate"
    x86 = isinstance(cpu, X86Class)
    fresh = not x86 and (rebuild or rootfs_info(rootfs_path(root)) is None)
    rootfs = None if x86 else ensure_rootfs(root, mirror, rebuild, say)
    _qemu(cpu)
    say(f"writing the {profile} board's CPU view ({cpu.qemu_cpu.split(',')[0]})")
    python = sys.executable if x86 else None  # an x86 class runs this Python, with the runtimes installed here
    with locked(root):
        board = _make_board(_board_dir(root, name), profile, rootfs, python)
    device = Device(
        name=name,
        emulate=profile,
        rootfs=str(board),
        profile=profile if profile in PROFILES else None,
        threads=threads or 1,
        timeout=timeout or EMULATED_TIMEOUT,
        python=python or Device.python,
    )
    add_device(device, path, force=force)
    return get_device(name, path), {
        "built": fresh,
        "seconds": round(time.monotonic() - started, 1),
        "board": str(board),
        "rootfs": rootfs_info(rootfs) if rootfs else None,
        "python": python,
    }


def unregister(name: str, devices_file: str | os.PathLike | None = None) -> tuple[Path, list[str]]:
    """Remove a device from the registry; an emulated board's folder goes too, and the shared rootfs when no other
    board uses it. Returns (registry file, deleted folders)."""
    device = get_device(name, devices_file)
    path = remove_device(name, devices_file)
    info = board_info(device.rootfs) if device.emulate and device.rootfs else None
    if not info or not device.rootfs:
        return path, []
    board, rootfs = Path(device.rootfs), Path(info["rootfs"] or "")
    with locked(board.parent.parent):
        rmtree(board)
        deleted = [str(board)]
        if not info["rootfs"]:  # an x86 class: no user space of its own
            return path, deleted
        others = [b for b in board.parent.glob("*") if (board_info(b) or {}).get("rootfs") == str(rootfs)]
        if not others and (rootfs / MARKER).is_file():
            rmtree(rootfs)
            deleted.append(str(rootfs))
    return path, deleted
