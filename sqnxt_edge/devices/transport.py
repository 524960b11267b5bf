"""Run the one-file runner on a registered board: temp folder, copy, run, bring the JSON back, clean up.

The same `runner.pyz` the local bench runs (the runner package as one zipapp, `runner.ship`) is copied as-is, with
the same `Settings` argv, so local and remote figures mean the same thing. One SSH job is four bounded steps:
(1) preflight + `mktemp -d` (is the Python there? is `timeout` there?), (2) one `scp -r` of a staged folder (the
runner's one file, artifacts with their `.meta.json` sidecars, data file), (3) the runner under the board's own
`timeout` (so a hung board kills it itself) whose script deletes the temp folder when it ends, (4) a bounded cleanup
over a fresh connection when step 3 did not finish normally.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import runner
from ..errors import DeviceError
from ..runner.ship import PYZ_NAME, runner_pyz
from .registry import Device
from .ssh import SshResult, run_ssh, scp_upload

__all__ = ["RemoteJob", "run_runner", "runner_env", "remote_word"]

_NO_PYTHON = "sqnxt-edge: python not found"
_TIMED_OUT = (124, 137)  # coreutils timeout: TERM delivered / KILL delivered


def _safe_name(name: str) -> str:
    """A file name that needs no quoting anywhere (the real name is mapped back in the results)."""
    stem = re.sub(r"[^A-Za-z0-9._+-]", "_", name).lstrip(".-") or "artifact"
    return stem[-120:]


def _stage(folder: Path, name: str, src: Path) -> None:
    dest = folder / name
    try:
        dest.symlink_to(src.resolve())
    except OSError:
        shutil.copy2(src, dest)


@dataclass
class RemoteJob:
    """A staged folder to copy to the board: the runner, the artifacts (+ sidecars) and the data file, under names
    that need no quoting; `argv` refers to them by relative path."""

    stage: Path
    argv: list[str]
    path_map: dict[str, str] = field(default_factory=dict)  # remote relative path -> the caller's local path

    @property
    def command(self) -> list[str]:
        """The runner's file and argv, relative to the job folder: what the board's Python is given."""
        return [PYZ_NAME, *self.argv]

    @classmethod
    def build(
        cls, stage: Path, artifacts: list[Path], settings: runner.Settings | None, data_file: Path | str | None = None
    ) -> RemoteJob:
        """`settings=None` stages the runner alone for `--env-only`."""
        job = stage / "job"
        job.mkdir()
        _stage(job, PYZ_NAME, runner_pyz())
        if settings is None:
            return cls(job, ["--env-only"])
        data_file = data_file if data_file is not None else settings.data
        if data_file is not None:
            if not Path(data_file).is_file():
                raise DeviceError(f"data file not found: {data_file}")
            (job / "data").mkdir()
            rel = f"data/{_safe_name(Path(data_file).name)}"
            _stage(job, rel, Path(data_file))
            settings = replace(settings, data=rel)  # a local path never reaches the board
        path_map: dict[str, str] = {}
        for i, art in enumerate(artifacts):
            art = Path(art)
            (job / f"a{i}").mkdir()
            rel = f"a{i}/{_safe_name(art.name)}"
            if art.is_file():  # a missing one stays missing: the runner reports it like a local run would
                _stage(job, rel, art)
                for part, part_rel in zip(runner.companions(str(art)), runner.companions(rel)):
                    if Path(part).is_file():  # ncnn's .bin: the backend looks for it beside the .param
                        _stage(job, part_rel, Path(part))
                side = Path(runner.sidecar_path(str(art)))
                if side.is_file():
                    _stage(job, runner.sidecar_path(rel), side)
            path_map[rel] = str(art)
        return cls(job, [*settings.to_argv(), *path_map], path_map)

    def local_names(self, remote_dir: str | None = None) -> dict[str, str]:
        """Every way the board may spell an artifact -> the caller's path, longest first."""
        names = dict(self.path_map)
        if remote_dir:
            names.update({f"{remote_dir}/job/{rel}": local for rel, local in self.path_map.items()})
        return dict(sorted(names.items(), key=lambda kv: -len(kv[0])))


def remote_word(word: str) -> str:
    """shlex.quote for the board's shell, except that a leading ~/ still means the remote $HOME."""
    if word.startswith("~/"):
        return '"$HOME"/' + shlex.quote(word[2:])
    return shlex.quote(word)


def _deadline_left(deadline: float, what: str, device: Device) -> float:
    left = deadline - time.monotonic()
    if left <= 0.5:
        raise DeviceError(f"device {device.name!r}: timed out before {what}")
    return left


def detail(stderr: str) -> str:
    """The line of a board's stderr worth showing (the exception, not "Traceback")."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if not lines:
        return "no message on stderr"
    if any(ln.startswith("Traceback") for ln in lines):
        return lines[-1][:300]
    return lines[0][:300]


def _preflight(device: Device, timeout: float) -> tuple[str, set[str]]:
    """Check the Python exists, find `timeout`/`setsid`, make the temp folder. Returns (remote dir, tools found)."""
    script = (
        f"py={remote_word(device.python)}\n"
        f'command -v "$py" >/dev/null 2>&1 || {{ echo {shlex.quote(_NO_PYTHON)} >&2; exit 127; }}\n'
        "for t in timeout setsid; do command -v $t >/dev/null 2>&1 && echo tool=$t; done\n"
        f"d=$(mktemp -d {shlex.quote(device.workdir.rstrip('/') or '/')}/sqnxt-edge.XXXXXXXX) || exit 3\n"
        'echo "dir=$d"\n'
    )
    res = run_ssh(device, script, timeout, "connect")
    if res.returncode == 127 or _NO_PYTHON in res.stderr:
        raise DeviceError(
            f"device {device.name!r}: Python {device.python!r} not found on the board; install "
            'python3 there or set python = "/path/to/venv/bin/python" in devices.toml'
        )
    pairs = [ln.split("=", 1) for ln in res.stdout.splitlines() if "=" in ln]
    remote_dir = next((v for k, v in pairs if k == "dir"), "")
    if res.returncode != 0 or not re.fullmatch(r"/[A-Za-z0-9._/+-]+", remote_dir):
        raise DeviceError(
            f"device {device.name!r}: cannot make a temp folder in {device.workdir}: {detail(res.stderr)}"
        )
    return remote_dir, {v for k, v in pairs if k == "tool"}


# Board side: while the runner runs, a watchdog writes a newline to the connection's stderr every second. When the
# connection is gone (the SSH session died, the server was restarted, the client was killed) the write fails, and the
# watchdog stops the runner's process group; the script then deletes the temp folder as usual. Without it the runner
# would measure on, unseen, until its `timeout`, holding the folder. (A link that goes silent without closing is
# caught by that `timeout`.)
_WATCHDOG = (
    "(trap '' PIPE; while kill -0 $p 2>/dev/null; do sleep 1; printf '\\n' >&2 || { "
    "kill -TERM -$p 2>/dev/null || kill -TERM $p 2>/dev/null; sleep 2; "
    "kill -KILL -$p 2>/dev/null || kill -KILL $p 2>/dev/null; exit 0; }; done) </dev/null >/dev/null &\n"
)


def _run_script(device: Device, remote_dir: str, args: list[str], limit: float | None, tools: set[str]) -> str:
    """The remote run: the runner in its own process group (so it can be killed whole), under the board's own
    `timeout` when there is one, watched for a lost connection; the temp folder is deleted when it ends, whatever
    its exit status."""
    d = shlex.quote(remote_dir)
    cmd = " ".join([remote_word(device.python), *(shlex.quote(a) for a in [PYZ_NAME, *args])])
    if limit is not None and "timeout" in tools:  # timeout makes its own process group and kills it whole
        cmd = f"timeout -k 2 {int(max(1, limit))} {cmd}"
    elif "setsid" in tools:
        cmd = f"setsid {cmd}"
    return (
        f"cd {d}/job || exit 3\n"
        f"{cmd} &\n"
        "p=$!\n"
        f"echo $p > {d}/pid\n" + _WATCHDOG + "w=$!\n"
        # dash reports a job killed by a signal on stderr; on a lost connection that write would stop this
        # shell (SIGPIPE) before it deletes the folder
        "exec 2>/dev/null; trap '' PIPE\n"
        "wait $p; rc=$?\n"
        "kill $w 2>/dev/null\n"
        f"cd / && rm -rf {d}\n"
        "exit $rc\n"
    )


def _cleanup(device: Device, remote_dir: str) -> None:
    """Kill what is left of the runner's process group and delete the temp folder, bounded, never raising."""
    d = shlex.quote(remote_dir)
    script = (
        f"if [ -f {d}/pid ]; then p=$(cat {d}/pid); "
        'kill -KILL "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; fi\n'  # no `--`: dash rejects it
        f"rm -rf {d}\n"
    )
    try:
        run_ssh(device, script, timeout=device.connect_timeout + 10, what="cleanup")
    except DeviceError:
        pass


def execute_ssh(device: Device, job: RemoteJob, timeout: float) -> tuple[SshResult, str]:
    """Run one staged job on the board within `timeout` seconds, temp folder always removed.
    Returns the runner's result and the (already deleted) remote folder it ran in."""
    deadline = time.monotonic() + timeout
    remote_dir, tools = _preflight(device, min(timeout, device.connect_timeout + 30))
    has_timeout = "timeout" in tools
    finished = False
    try:
        scp_upload(device, [job.stage], remote_dir, _deadline_left(deadline, "copying files", device))
        left = _deadline_left(deadline, "running", device)
        limit = max(1.0, left - min(10.0, max(2.0, 0.15 * left))) if has_timeout else None
        res = run_ssh(device, _run_script(device, remote_dir, job.argv, limit, tools), left, "the remote run")
        finished = True
    finally:
        if not finished:
            _cleanup(device, remote_dir)
    if has_timeout and res.returncode in _TIMED_OUT and not res.stdout.strip():
        raise DeviceError(
            f"device {device.name!r}: timed out after {timeout:.0f} s on the board "
            "(runner stopped there; raise timeout in devices.toml or use fewer --runs)"
        )
    if res.returncode == 127:
        raise DeviceError(f"device {device.name!r}: Python {device.python!r} could not start: {detail(res.stderr)}")
    return res, remote_dir


def parse_output(device: Device, res: SshResult) -> dict:
    """The runner's one JSON object from a board's stdout, or a one-line DeviceError saying what went wrong."""
    text = res.stdout.strip()
    for candidate in (text, text[text.find("{") :] if "{" in text else ""):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    hint = ""
    if "No module named 'numpy'" in res.stderr:
        hint = f"; install it there: {shlex.quote(device.python)} -m pip install numpy onnxruntime ai-edge-litert"
    raise DeviceError(
        f"device {device.name!r}: runner output is not JSON (exit {res.returncode}): {detail(res.stderr)}{hint}"
    )


def _map_paths(obj, names: dict[str, str]):
    """Replace the board's relative artifact paths by the caller's names, anywhere in the runner's JSON."""
    if isinstance(obj, dict):
        return {k: _map_paths(v, names) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_map_paths(v, names) for v in obj]
    if isinstance(obj, str):
        if obj in names:
            return names[obj]
        for rel, local in names.items():
            if rel in obj:
                obj = obj.replace(rel, local)
    return obj


def _device_info(device: Device) -> dict:
    if device.emulate:
        return {"name": device.name, "emulate": device.emulate, "profile": device.profile}
    return {"name": device.name, "host": device.host, "profile": device.profile}


def _execute(device: Device, job: RemoteJob, timeout: float) -> tuple[SshResult, str | None]:
    if device.emulate:  # a board emulated on this machine: the same job, run under QEMU instead of over SSH
        from .emulate import execute_emulated

        return execute_emulated(device, job, timeout)
    return execute_ssh(device, job, timeout)


def run_runner(
    device: Device,
    artifacts: list[Path],
    settings: runner.Settings,
    data_file: Path | None = None,
    timeout: float | None = None,
) -> dict:
    """Run the runner with `settings` over `artifacts` on `device` and return its JSON.

    Results name the artifacts as the caller passed them; `env["device"]` = {name, host, profile}. Without threads
    in `settings`, the pinned cores' count or the device's (else its profile's cores) are used. `timeout` (default:
    the device's, plus what sustained runs and cool-downs add) bounds the whole job. Per-artifact failures come back
    as results with "error" (runner exit 1); anything that stops the whole run raises a one-line DeviceError.
    """
    timeout = float(timeout or device.timeout) + settings.extra_seconds(len(artifacts))
    if not settings.cores:  # pinned: one thread per pinned core, which the runner counts
        settings = replace(settings, threads=settings.threads or device.default_threads)
    with tempfile.TemporaryDirectory(prefix="sqnxt-edge-stage-") as tmp:
        job = RemoteJob.build(Path(tmp), [Path(a) for a in artifacts], settings, data_file)
        res, remote_dir = _execute(device, job, timeout)
    data = parse_output(device, res)
    if res.returncode not in (0, 1) and not data.get("results"):
        raise DeviceError(
            f"device {device.name!r}: runner failed (exit {res.returncode}): {data.get('error') or detail(res.stderr)}"
        )
    data = _map_paths(data, job.local_names(remote_dir))
    env = data.setdefault("env", {})
    if isinstance(env, dict):
        env["device"] = _device_info(device)
    data["device"] = _device_info(device)
    return data


def runner_env(device: Device, timeout: float | None = None) -> dict:
    """`runner.pyz --env-only` on the board: its Python, CPU, ISA features and importable runtimes."""
    timeout = float(timeout or min(device.timeout, 120.0))
    with tempfile.TemporaryDirectory(prefix="sqnxt-edge-stage-") as tmp:
        job = RemoteJob.build(Path(tmp), [], None)
        res, _ = _execute(device, job, timeout)
    data = parse_output(device, res)
    if res.returncode != 0:
        raise DeviceError(
            f"device {device.name!r}: runner --env-only failed (exit {res.returncode}): {detail(res.stderr)}"
        )
    data.setdefault("env", {})["device"] = _device_info(device)
    return data
