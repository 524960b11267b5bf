"""Run the one-file runner on a registered board: temp folder, copy, run, bring the JSON back, clean up.

The same `runner.py` the local bench uses is copied as-is, so local and remote figures mean the same thing.
One remote job is four bounded steps: (1) preflight + `mktemp -d` (is the Python there? is `timeout` there?),
(2) one `scp -r` of a staged folder (runner, artifacts with their `.meta.json` sidecars, data file), (3) the runner
under the board's own `timeout` (so a hung board kills it itself) whose script deletes the temp folder when it
ends, (4) a bounded cleanup over a fresh connection when step 3 did not finish normally.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import DeviceError
from .devices import Device, get_device
from .ssh import SshResult, run_ssh, scp_upload

__all__ = ["run_runner_remote", "check_device", "remote_env", "RemoteJob"]

RUNNER = Path(__file__).with_name("runner.py")
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


def _pop_data(runner_args: list[str]) -> tuple[list[str], Path | None]:
    """runner_args without any `--data FILE` / `--data=FILE`, and that FILE."""
    args, data, it = [], None, iter(str(a) for a in runner_args)
    for a in it:
        if a == "--data":
            data = Path(next(it, ""))
        elif a.startswith("--data="):
            data = Path(a.split("=", 1)[1])
        else:
            args.append(a)
    return args, data


@dataclass
class RemoteJob:
    """A staged folder to copy to the board and the runner arguments that refer to it (relative paths)."""

    stage: Path
    args: list[str]
    path_map: dict[str, str]  # remote relative path -> the caller's local path

    @classmethod
    def build(cls, stage: Path, artifacts: list[Path], runner_args: list[str], data_file: Path | None) -> "RemoteJob":
        job = stage / "job"
        job.mkdir()
        _stage(job, "runner.py", RUNNER)
        args, given = _pop_data(runner_args)  # a local --data path in the args is copied too, never passed as-is
        data_file = data_file if data_file is not None else given
        path_map: dict[str, str] = {}
        if data_file is not None:
            data_file = Path(data_file)
            if not data_file.is_file():
                raise DeviceError(f"data file not found: {data_file}")
            (job / "data").mkdir()
            rel = f"data/{_safe_name(data_file.name)}"
            _stage(job, rel, data_file)
            args += ["--data", rel]
        for i, art in enumerate(artifacts):
            art = Path(art)
            sub = job / f"a{i}"
            sub.mkdir()
            rel = f"a{i}/{_safe_name(art.name)}"
            if art.is_file():  # a missing one stays missing: the runner reports it like a local run would
                _stage(job, rel, art)
                side = Path(str(art) + ".meta.json")
                if side.is_file():
                    _stage(job, rel + ".meta.json", side)
            path_map[rel] = str(art)
        return cls(stage=job, args=args + list(path_map), path_map=path_map)


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


def _detail(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if not lines:
        return "no message on stderr"
    if any(ln.startswith("Traceback") for ln in lines):  # the exception line says more than "Traceback"
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
        raise DeviceError(f"device {device.name!r}: Python {device.python!r} not found on the board; install "
                          "python3 there or set python = \"/path/to/venv/bin/python\" in devices.toml")
    pairs = [ln.split("=", 1) for ln in res.stdout.splitlines() if "=" in ln]
    remote_dir = next((v for k, v in pairs if k == "dir"), "")
    if res.returncode != 0 or not re.fullmatch(r"/[A-Za-z0-9._/+-]+", remote_dir):
        raise DeviceError(f"device {device.name!r}: cannot make a temp folder in {device.workdir}: {_detail(res.stderr)}")
    return remote_dir, {v for k, v in pairs if k == "tool"}


def _run_script(device: Device, remote_dir: str, args: list[str], limit: float | None, tools: set[str]) -> str:
    """The remote run: the runner in its own process group (so it can be killed whole), under the board's own
    `timeout` when there is one; the temp folder is deleted when it ends, whatever its exit status."""
    d = shlex.quote(remote_dir)
    cmd = " ".join([remote_word(device.python), *(shlex.quote(a) for a in ["runner.py", *args])])
    if limit is not None and "timeout" in tools:  # timeout makes its own process group and kills it whole
        cmd = f"timeout -k 2 {int(max(1, limit))} {cmd}"
    elif "setsid" in tools:
        cmd = f"setsid {cmd}"
    return (f"cd {d}/job || exit 3\n"
            f"{cmd} &\n"
            f"echo $! > {d}/pid\n"
            "wait $!; rc=$?\n"
            f"cd / && rm -rf {d}\n"
            "exit $rc\n")


def _cleanup(device: Device, remote_dir: str) -> None:
    """Kill what is left of the runner's process group and delete the temp folder, bounded, never raising."""
    d = shlex.quote(remote_dir)
    script = (f"if [ -f {d}/pid ]; then p=$(cat {d}/pid); "
              'kill -KILL "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; fi\n'  # no `--`: dash rejects it
              f"rm -rf {d}\n")
    try:
        run_ssh(device, script, timeout=device.connect_timeout + 10, what="cleanup")
    except DeviceError:
        pass


def execute(device: Device, job: RemoteJob, timeout: float) -> tuple[SshResult, str]:
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
        res = run_ssh(device, _run_script(device, remote_dir, job.args, limit, tools), left, "the remote run")
        finished = True
    finally:
        if not finished:
            _cleanup(device, remote_dir)
    if has_timeout and res.returncode in _TIMED_OUT and not res.stdout.strip():
        raise DeviceError(f"device {device.name!r}: timed out after {timeout:.0f} s on the board "
                          "(runner stopped there; raise timeout in devices.toml or use fewer --runs)")
    if res.returncode == 127:
        raise DeviceError(f"device {device.name!r}: Python {device.python!r} could not start: {_detail(res.stderr)}")
    return res, remote_dir


def _parse(device: Device, res: SshResult) -> dict:
    text = res.stdout.strip()
    for candidate in (text, text[text.find("{"):] if "{" in text else ""):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    hint = ""
    if "No module named 'numpy'" in res.stderr:
        hint = f"; install it there: {shlex.quote(device.python)} -m pip install numpy onnxruntime ai-edge-litert"
    raise DeviceError(f"device {device.name!r}: runner output is not JSON (exit {res.returncode}): "
                      f"{_detail(res.stderr)}{hint}")


def _map_paths(obj, remote_dir_names: dict[str, str]):
    """Replace the board's relative artifact paths by the caller's names, anywhere in the runner's JSON."""
    if isinstance(obj, dict):
        return {k: _map_paths(v, remote_dir_names) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_map_paths(v, remote_dir_names) for v in obj]
    if isinstance(obj, str):
        if obj in remote_dir_names:
            return remote_dir_names[obj]
        for rel, local in remote_dir_names.items():
            if rel in obj:
                obj = obj.replace(rel, local)
        return obj
    return obj


def _device_info(device: Device) -> dict:
    return {"name": device.name, "host": device.host, "profile": device.profile}


def _with_threads(device: Device, runner_args: list[str]) -> list[str]:
    args = [str(a) for a in runner_args]
    threads = device.default_threads
    if threads and not any(a == "--threads" or a.startswith("--threads=") for a in args):
        args = ["--threads", str(threads), *args]
    return args


def run_runner_remote(device_name: str, artifacts: list[Path], runner_args: list[str], data_file: Path | None = None,
                      devices_file: Path | None = None, timeout: float | None = None) -> dict:
    """Run `runner.py RUNNER_ARGS ARTIFACTS` on the board `device_name` and return its JSON.

    Results name the artifacts as the caller passed them; `env["device"]` = {name, host, profile}. Without
    --threads in runner_args the device's threads (else its profile's cores) are used. `timeout` (default: the
    device's) bounds the whole job. Per-artifact failures come back as results with "error" (runner exit 1);
    anything that stops the whole run raises a one-line DeviceError.
    """
    device = get_device(device_name, devices_file)
    timeout = float(timeout or device.timeout)
    with tempfile.TemporaryDirectory(prefix="sqnxt-edge-stage-") as tmp:
        job = RemoteJob.build(Path(tmp), [Path(a) for a in artifacts], _with_threads(device, runner_args), data_file)
        res, remote_dir = execute(device, job, timeout)
    data = _parse(device, res)
    if res.returncode not in (0, 1) and not data.get("results"):
        raise DeviceError(f"device {device.name!r}: runner failed (exit {res.returncode}): "
                          f"{data.get('error') or _detail(res.stderr)}")
    names = {f"{remote_dir}/job/{rel}": local for rel, local in job.path_map.items()}
    names.update(job.path_map)
    data = _map_paths(data, dict(sorted(names.items(), key=lambda kv: -len(kv[0]))))
    env = data.setdefault("env", {})
    if isinstance(env, dict):
        env["device"] = _device_info(device)
    data["device"] = _device_info(device)
    return data


def remote_env(device: Device, timeout: float | None = None) -> dict:
    """`runner.py --env-only` on the board: its Python, CPU, ISA features and importable runtimes."""
    timeout = float(timeout or min(device.timeout, 120.0))
    with tempfile.TemporaryDirectory(prefix="sqnxt-edge-stage-") as tmp:
        job = RemoteJob.build(Path(tmp), [], ["--env-only"], None)
        res, _ = execute(device, job, timeout)
    data = _parse(device, res)
    if res.returncode != 0:
        raise DeviceError(f"device {device.name!r}: runner --env-only failed (exit {res.returncode}): "
                          f"{_detail(res.stderr)}")
    env = data.setdefault("env", {})
    env["device"] = _device_info(device)
    return data


# -- devices check ------------------------------------------------------------------------------------------------

def _pip_line(device: Device, env: dict, runtimes: dict) -> tuple[list[str], str | None]:
    """The packages the board lacks and the exact pip line that installs them."""
    arch = str(env.get("arch") or "").lower()
    system = str(env.get("os") or "").split(" ")[0]
    missing = []
    if not runtimes.get("onnxruntime"):
        missing.append("onnxruntime")
    if not runtimes.get("litert") and not runtimes.get("tflite-runtime"):
        litert_ok = arch in ("aarch64", "arm64", "x86_64", "amd64") and system in ("Linux", "Darwin")
        missing.append("ai-edge-litert" if litert_ok else "tflite-runtime")
    if not missing:
        return [], None
    return missing, f"{shlex.quote(device.python)} -m pip install {' '.join(missing)}"


def _profile_warnings(device: Device, env: dict) -> list[str]:
    warnings = []
    arch = str(env.get("arch") or "")
    if arch.startswith("arm") and arch not in ("arm64",):
        warnings.append(f"the board runs a 32-bit OS ({arch}): onnxruntime and ai-edge-litert publish no wheels for "
                        "it; install a 64-bit OS (e.g. 64-bit Raspberry Pi OS)")
    prof = device.profile_info
    if prof is None:
        return warnings
    feats = env.get("features") or {}
    checks = [("architecture", prof.arch, arch), ("cores", prof.cores, env.get("cores"))]
    checks += [(k, v, feats.get(k)) for k, v in prof.expected_features().items()]
    for what, expected, seen in checks:
        if expected is not None and seen is not None and expected != seen:
            show = {True: "yes", False: "no"}
            warnings.append(f"profile {prof.name!r} says {what} = {show.get(expected, expected)}, "
                            f"the board reports {show.get(seen, seen)}")
    model = str(env.get("model") or "")
    if prof.cpu and model and prof.cpu.lower() not in model.lower():
        warnings.append(f"profile {prof.name!r} says CPU {prof.cpu}, the board reports {model}")
    return warnings


def check_device(device_name: str, devices_file: Path | None = None, timeout: float | None = None) -> dict:
    """Connect, run `runner.py --env-only` on the board, and say what it has, lacks and contradicts."""
    device = get_device(device_name, devices_file)
    started = time.monotonic()
    data = remote_env(device, timeout)
    env, runtimes = data.get("env", {}), data.get("runtimes", {})
    missing, pip = _pip_line(device, env, runtimes)
    prof = device.profile_info
    return {
        "device": {**device.to_dict(), "threads_default": device.default_threads},
        "reachable": True,
        "seconds": round(time.monotonic() - started, 2),
        "runner_version": data.get("runner_version"),
        "env": env,
        "runtimes": runtimes,
        "runtime_errors": data.get("runtime_errors", {}),
        "missing": missing,
        "pip_install": pip,
        "profile": prof.to_dict() if prof else None,
        "warnings": _profile_warnings(device, env),
    }
