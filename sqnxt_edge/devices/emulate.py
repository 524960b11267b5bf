"""Emulated boards: the cached aarch64 user space (`rootfs`) run by QEMU user-mode, pinned to the board's core, with
that board's view of its CPU, so the runtimes pick the kernels they would pick on the board.

Why the CPU view is faked: qemu 7.2 shows the guest the host's x86 /proc/cpuinfo, and pytorch-cpuinfo (inside
onnxruntime and XNNPACK) then fails (XNNPACK silently off) or crashes onnxruntime. `qemu -L ROOT` redirects an
absolute path to ROOT/path whenever that file exists, so each board's folder holds the files a Pi shows (the
/proc/cpuinfo of its cores, the cpu lists and topology, cpufreq limits, the device-tree model) and links everything
else to the shared rootfs. `-cpu` pins the ISA the guest sees (AT_HWCAP): the default `max` would advertise
dotprod, i8mm, SVE ... that a Cortex-A72 lacks. See shared/arm-emulation.md.

A board is registered in devices.toml like any other device (`emulate = PROFILE`, `rootfs = FOLDER`), and the same
runner.pyz runs on it, unchanged: `$SQNXT_EDGE_LAUNCHER` makes its child processes start through qemu (an emulated
Python cannot exec an aarch64 binary without binfmt_misc, but it can exec the host's qemu), and
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
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import runner
from ..errors import DeviceError
from ..interrupts import kill_process_group
from .registry import Device, add_device, devices_path, get_device, load_devices, remove_device
from .rootfs import MARKER, SITE, cache_dir, ensure_rootfs, locked, require_tools, rmtree, rootfs_info, rootfs_path

__all__ = ["Core", "CORES", "core_for", "emulate_device", "command", "execute_emulated", "unregister", "board_info"]

BOARD_FILE = ".sqnxt-edge-board.json"
EMULATED_TIMEOUT = 3600.0  # seconds for one run: emulation is 100-600x slower than the host
# Threads default to 1: the kernels a runtime picks do not depend on it, and under emulation its spinning thread
# pool costs more host CPU than it saves (measured: 2 threads 1.6x, 4 threads 2.7x the CPU time of 1 per image).
Say = Callable[[str], None]


@dataclass(frozen=True)
class Core:
    """How one board's CPU looks from inside: QEMU's CPU model and the /proc/cpuinfo fields of the real board."""

    qemu_cpu: str
    part: str  # ARM "CPU part" id (runner._ARM_PARTS names it)
    variant: str
    revision: int
    features: str  # /proc/cpuinfo "Features" of the real board
    cores: int
    max_khz: int
    min_khz: int
    model: str | None = None  # /sys/firmware/devicetree/base/model
    hardware: str | None = None  # /proc/cpuinfo Hardware / Revision lines of a Pi
    board_revision: str | None = None


CORES: dict[str, Core] = {
    # Raspberry Pi 4 Model B: BCM2711, 4x Cortex-A72 r0p3, ARMv8.0 (no crypto, no dotprod), 1.5 GHz
    "rpi4": Core(
        "cortex-a72",
        "0xd08",
        "0x0",
        3,
        "fp asimd evtstrm crc32 cpuid",
        4,
        1500000,
        600000,
        "Raspberry Pi 4 Model B Rev 1.4",
        "BCM2835",
        "c03114",
    ),
    # Raspberry Pi 5: BCM2712, 4x Cortex-A76 r4p1, ARMv8.2 with dotprod, 2.4 GHz
    "rpi5": Core(
        "cortex-a76",
        "0xd0b",
        "0x4",
        1,
        "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp",
        4,
        2400000,
        1500000,
        "Raspberry Pi 5 Model B Rev 1.0",
        "BCM2835",
        "d04170",
    ),
    # any 64-bit ARM board: the lowest common core, 4x Cortex-A53 (ARMv8.0, the Pi 3 / Zero 2 W class), 1.2 GHz
    "generic-arm64": Core("cortex-a53", "0xd03", "0x0", 4, "fp asimd evtstrm crc32 cpuid", 4, 1200000, 600000),
}


def core_for(profile: str | None) -> Core:
    if profile not in CORES:
        raise DeviceError(f"no emulation for profile {profile!r}; emulated boards: {', '.join(CORES)}")
    return CORES[profile]


def cpuinfo_text(core: Core) -> str:
    """/proc/cpuinfo as the board's arm64 Linux prints it."""
    block = (
        "processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: {c.features}\nCPU implementer\t: 0x41\n"
        "CPU architecture: 8\nCPU variant\t: {c.variant}\nCPU part\t: {c.part}\nCPU revision\t: {c.revision}\n\n"
    )
    text = "".join(block.format(i=i, c=core) for i in range(core.cores))
    if core.hardware:
        text += f"Hardware\t: {core.hardware}\nRevision\t: {core.board_revision}\nModel\t\t: {core.model}\n"
    return text


def _view(core: Core) -> dict[str, str]:
    """Every file of the board's CPU view, by absolute path (what runner.cpu_info and pytorch-cpuinfo read)."""
    last = core.cores - 1
    every = f"0-{last}" if last else "0"
    midr = (0x41 << 24) | (int(core.variant, 16) << 20) | (0xF << 16) | (int(core.part, 16) << 4) | core.revision
    files = {"/proc/cpuinfo": cpuinfo_text(core)}
    cpu = "/sys/devices/system/cpu"
    files.update({f"{cpu}/{n}": every + "\n" for n in ("possible", "present", "online")})
    files.update({f"{cpu}/kernel_max": f"{last}\n", f"{cpu}/offline": "\n"})
    for i in range(core.cores):
        files.update(
            {
                f"{cpu}/cpu{i}/cpufreq/cpuinfo_max_freq": f"{core.max_khz}\n",
                f"{cpu}/cpu{i}/cpufreq/cpuinfo_min_freq": f"{core.min_khz}\n",
                f"{cpu}/cpu{i}/cpufreq/scaling_cur_freq": "",  # the emulator has no clock: unknown, not the host's
                f"{cpu}/cpu{i}/cpufreq/scaling_governor": "",
                f"{cpu}/cpu{i}/regs/identification/midr_el1": f"0x{midr:016x}\n",
                f"{cpu}/cpu{i}/topology/physical_package_id": "0\n",
                f"{cpu}/cpu{i}/topology/core_id": f"{i}\n",
                f"{cpu}/cpu{i}/topology/core_siblings_list": every + "\n",
                f"{cpu}/cpu{i}/topology/package_cpus_list": every + "\n",
                f"{cpu}/cpu{i}/topology/thread_siblings_list": f"{i}\n",
                f"{cpu}/cpu{i}/topology/core_cpus_list": f"{i}\n",
            }
        )
    files["/sys/firmware/devicetree/base/model"] = (core.model + "\x00") if core.model else ""
    return files


def _board_dir(cache: Path, name: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".-")[:40] or "board"
    return cache / "boards" / f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def board_info(folder: str | Path) -> dict | None:
    try:
        return json.loads((Path(folder) / BOARD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _make_board(dest: Path, profile: str, rootfs: Path) -> Path:
    """The board's own folder: its CPU view as files, every other top-level entry a link into the shared rootfs."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for entry in rootfs.iterdir():
            if entry.name not in ("proc", "sys", "dev", "tmp"):
                (tmp / entry.name).symlink_to(entry)
        for path, text in _view(CORES[profile]).items():
            file = tmp / path.lstrip("/")
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text, encoding="utf-8")
        (tmp / BOARD_FILE).write_text(json.dumps({"profile": profile, "rootfs": str(rootfs)}) + "\n")
        if dest.exists():
            rmtree(dest)
        os.rename(tmp, dest)
    finally:
        rmtree(tmp)
    return dest


def _qemu() -> str:
    return require_tools(("qemu-aarch64-static",))["qemu-aarch64-static"]


def _qemu_version(qemu: str) -> str:
    try:
        out = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    m = re.search(r"version (\S+)", out)
    return m.group(1) if m else "unknown"


def command(device: Device, args: list[str], tmp: Path) -> tuple[list[str], dict[str, str]]:
    """argv and environment that run the board's Python with `args` under QEMU (temp files in `tmp`)."""
    core = core_for(device.emulate)
    board = Path(device.rootfs or "")
    info = board_info(board)
    if not info or not rootfs_info(board):
        raise DeviceError(
            f"device {device.name!r}: the emulated board in {board} is missing or incomplete; build it "
            f"again with: sqnxt-edge devices emulate {shlex.quote(device.name)} --profile "
            f"{device.emulate} --force"
        )
    qemu = _qemu()
    python = device.python if device.python.startswith("/") else f"/usr/bin/{device.python}"
    launcher = [qemu, "-L", str(board), "-cpu", core.qemu_cpu]
    host = runner.cpu_info()
    emulation = {
        "emulator": f"qemu-aarch64 {_qemu_version(qemu)} (user mode)",
        "cpu": core.qemu_cpu,
        "profile": device.emulate,
        "rootfs": f"Debian {rootfs_info(board).get('suite')} arm64",
        "host": {k: host.get(k) for k in ("arch", "model", "cores")},
        "note": "latency, memory and load are the emulator's on this host, not the board's",
    }
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(board / SITE),
        "PYTHONNOUSERSITE": "1",
        runner.LAUNCHER_VAR: shlex.join(launcher),
        runner.EMULATION_VAR: json.dumps(emulation),
    }
    return [*launcher, str(board) + python, *args], env


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
    set-up did ({"built": bool, "seconds", "rootfs": its record})."""
    say = say or (lambda message: None)
    core_for(profile)
    path = devices_path(devices_file)
    if name in load_devices(path) and not force:
        raise DeviceError(f"device {name!r} already exists in {path}; use --force to replace it")
    started = time.monotonic()
    root = cache_dir(cache) / "emulate"
    fresh = rebuild or rootfs_info(rootfs_path(root)) is None
    rootfs = ensure_rootfs(root, mirror, rebuild, say)
    _qemu()
    say(f"writing the {profile} board's CPU view ({CORES[profile].qemu_cpu})")
    with locked(root):
        board = _make_board(_board_dir(root, name), profile, rootfs)
    device = Device(
        name=name,
        emulate=profile,
        rootfs=str(board),
        profile=profile,
        threads=threads or 1,
        timeout=timeout or EMULATED_TIMEOUT,
    )
    add_device(device, path, force=force)
    return get_device(name, path), {
        "built": fresh,
        "seconds": round(time.monotonic() - started, 1),
        "board": str(board),
        "rootfs": rootfs_info(rootfs),
    }


def unregister(name: str, devices_file: str | os.PathLike | None = None) -> tuple[Path, list[str]]:
    """Remove a device from the registry; an emulated board's folder goes too, and the shared rootfs when no other
    board uses it. Returns (registry file, deleted folders)."""
    device = get_device(name, devices_file)
    path = remove_device(name, devices_file)
    info = board_info(device.rootfs) if device.emulate and device.rootfs else None
    if not info:
        return path, []
    board, rootfs = Path(device.rootfs), Path(info["rootfs"])
    with locked(board.parent.parent):
        rmtree(board)
        deleted = [str(board)]
        others = [b for b in board.parent.glob("*") if (board_info(b) or {}).get("rootfs") == str(rootfs)]
        if not others and (rootfs / MARKER).is_file():
            rmtree(rootfs)
            deleted.append(str(rootfs))
    return path, deleted
