"""`devices check`: connect, run the runner's `--env-only` on the board, say what it has, lacks and contradicts."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from .registry import Device, get_device
from .transport import runner_env

__all__ = ["check_device", "core_advice", "pip_line", "profile_warnings"]


def pip_line(device: Device, env: dict, runtimes: dict) -> tuple[list[str], str | None]:
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
    if device.emulate and arch == "aarch64":  # its runtimes come with the cached user space (x86: this machine's)
        return missing, (
            f"sqnxt-edge devices emulate {shlex.quote(device.name)} --profile {device.emulate} --force --rebuild"
        )
    return missing, f"{shlex.quote(device.python)} -m pip install {' '.join(missing)}"


def profile_warnings(device: Device, env: dict) -> list[str]:
    """Where the board contradicts its hardware profile (architecture, cores, ISA features, CPU)."""
    warnings = []
    arch = str(env.get("arch") or "")
    if arch.startswith("arm") and arch not in ("arm64",):
        warnings.append(
            f"the board runs a 32-bit OS ({arch}): onnxruntime and ai-edge-litert publish no wheels for "
            "it; install a 64-bit OS (e.g. 64-bit Raspberry Pi OS)"
        )
    prof = device.profile_info
    if prof is None:
        return warnings
    feats = env.get("features") or {}
    checks = [("architecture", prof.arch, arch), ("cores", prof.cores, env.get("cores"))]
    checks += [(k, v, feats.get(k)) for k, v in prof.expected_features().items()]
    for what, expected, seen in checks:
        if expected is not None and seen is not None and expected != seen:
            show: dict[object, object] = {True: "yes", False: "no"}
            warnings.append(
                f"profile {prof.name!r} says {what} = {show.get(expected, expected)}, "
                f"the board reports {show.get(seen, seen)}"
            )
    model = str(env.get("model") or "")
    if prof.cpu and model and prof.cpu.lower() not in model.lower():
        warnings.append(f"profile {prof.name!r} says CPU {prof.cpu}, the board reports {model}")
    return warnings


def check_device(device_name: str, devices_file: Path | None = None, timeout: float | None = None) -> dict:
    """Connect, run `runner.pyz --env-only` on the board, and say what it has, lacks and contradicts."""
    device = get_device(device_name, devices_file)
    started = time.monotonic()
    data = runner_env(device, timeout)
    env, runtimes = data.get("env", {}), data.get("runtimes", {})
    missing, pip = pip_line(device, env, runtimes)
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
        "warnings": profile_warnings(device, env),
        **core_advice(env),
    }


def core_advice(env: dict) -> dict:
    """A heterogeneous CPU's core types (ARM part per core) and the big cores to pin a bench to (`--cores`)."""
    types = env.get("core_types") or []
    if not types:
        return {}
    from ..runner import core_list

    kinds: dict[str, list[int]] = {}
    for t in types:
        kinds.setdefault(t["name"], []).append(t["cpu"])
    big = env.get("big_cores") or []
    return {
        "core_kinds": {name: core_list(cpus) for name, cpus in kinds.items()},
        "big_cores": core_list(big) if big else None,
    }
