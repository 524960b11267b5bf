"""`sqnxt-edge devices list|show|add|remove|check`: the boards `bench --device NAME` runs on."""

from __future__ import annotations

import shlex
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..devices import PROFILES, Device, add_device, devices_path, get_device, get_profile, list_profiles, load_devices
from .common import err, handle_errors, out, print_json
from .options import DevicesOpt, ForceOpt, JsonOpt, NameArg, ThreadsOpt, TimeoutOpt

devices_app = typer.Typer(
    help="Boards that `bench --device NAME` runs on: over SSH, or emulated on this machine.", no_args_is_help=True
)


def _profile_row(p) -> dict:
    return p.to_dict()


def _fmt(value) -> str:
    if value is None or value == "" or value == ():
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return escape(str(value))


def list_cmd(devices: DevicesOpt = None, json_out: JsonOpt = False) -> None:
    """List registered devices and the built-in hardware profiles."""
    path = devices_path(devices)
    registered = load_devices(devices)
    profiles = [p for p in (PROFILES[n] if n in PROFILES else get_profile(n) for n in list_profiles()) if p]
    if json_out:
        print_json(
            {
                "devices_file": str(path),
                "devices": [d.to_dict() for d in registered.values()],
                "profiles": [_profile_row(p) for p in profiles],
            }
        )
        return
    table = Table(title=f"Devices in {escape(str(path))}")
    for col in ("name", "host", "port", "profile", "python", "threads"):
        table.add_column(col)
    for d in registered.values():
        table.add_row(
            escape(d.name), escape(d.target), _fmt(d.port), _fmt(d.profile), escape(d.python), _fmt(d.default_threads)
        )
    if registered:
        out.print(table)
    else:
        err.print(
            f"no devices registered in {escape(str(path))}; add one with: "
            "sqnxt-edge devices add rpi4 --host pi@raspberrypi.local --profile rpi4"
        )
    pt = Table(title="Built-in hardware profiles")
    pt.add_column("profile", no_wrap=True)
    for col in ("CPU", "arch", "dotprod", "memory GB", "fp32 GFLOP/s"):
        pt.add_column(col)
    for p in profiles:
        cpu = _fmt(p.cpu) + (f" x{p.cores}" if p.cores else "") + (f" @ {p.clock_ghz:g} GHz" if p.clock_ghz else "")
        pt.add_row(p.name, cpu, _fmt(p.arch), _fmt(p.dotprod), _fmt(p.memory_gb), _fmt(p.peak_gflops_fp32))
    out.print(pt)


def show_cmd(name: NameArg, devices: DevicesOpt = None, json_out: JsonOpt = False) -> None:
    """Show one device's settings and its hardware profile."""
    d = get_device(name, devices)
    prof = d.profile_info
    data = {**d.to_dict(), "threads_default": d.default_threads, "profile_info": prof.to_dict() if prof else None}
    if json_out:
        print_json(data)
        return
    table = Table(title=f"Device {escape(d.name)}", show_header=False)
    table.add_column("setting", style="bold")
    table.add_column("value")
    from ..devices.registry import SSH_KEYS

    hidden = ("name", "profile_info", "host", *SSH_KEYS) if d.emulate else ("name", "profile_info")
    for key, value in data.items():
        if key not in hidden:
            table.add_row(key, _fmt(value))
    if prof:
        for key in (
            "description",
            "cpu",
            "cores",
            "clock_ghz",
            "neon",
            "dotprod",
            "memory_gb",
            "peak_gflops_fp32",
            "notes",
        ):
            table.add_row(f"profile.{key}", _fmt(getattr(prof, key)))
    out.print(table)


def add_cmd(
    name: NameArg,
    host: Annotated[str, typer.Option("--host", help="SSH target: user@host, host, or a ~/.ssh/config alias.")],
    user: Annotated[Optional[str], typer.Option(help="SSH user (else from --host or your ssh config).")] = None,
    port: Annotated[Optional[int], typer.Option(help="SSH port.")] = None,
    identity: Annotated[Optional[str], typer.Option(help="Private key file for ssh -i.")] = None,
    python: Annotated[
        str,
        typer.Option(
            help="Python on the board with numpy + runtimes, e.g. '~/venv/bin/python' "
            "(quote it: ~ means the board's home)."
        ),
    ] = "python3",
    threads: ThreadsOpt = None,
    profile: Annotated[Optional[str], typer.Option(help=f"Hardware profile: {', '.join(list_profiles())}.")] = None,
    workdir: Annotated[str, typer.Option(help="Remote base folder for the temp folder.")] = "/tmp",
    timeout: TimeoutOpt = None,
    force: ForceOpt = False,
    devices: DevicesOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register a board (nothing is contacted; run `devices check NAME` next).

    --threads is the board's default (else its profile's cores); --timeout what one run may take (default 600)."""
    fields: dict[str, Any] = {
        "user": user,
        "port": port,
        "identity": identity,
        "threads": threads,
        "profile": profile,
        "timeout": timeout,
    }
    dev = Device(
        name=name, host=host, python=python, workdir=workdir, **{k: v for k, v in fields.items() if v is not None}
    )
    path = add_device(dev, devices, force=force)
    saved = load_devices(path)[name]
    if json_out:
        print_json({"devices_file": str(path), "device": saved.to_dict()})
        return
    err.print(
        f"added device {escape(name)} ({escape(saved.target)}) to {escape(str(path))}; "
        f"check it with: sqnxt-edge devices check {escape(shlex.quote(name))}"
        + (f" --devices {escape(shlex.quote(str(path)))}" if devices else ""),
        highlight=False,
    )


def remove_cmd(name: NameArg, devices: DevicesOpt = None, json_out: JsonOpt = False) -> None:
    """Unregister a device (an emulated board's cached folder is deleted too)."""
    from ..devices.emulate import unregister

    path, deleted = unregister(name, devices)
    if json_out:
        print_json({"devices_file": str(path), "removed": name, **({"deleted": deleted} if deleted else {})})
        return
    err.print(f"removed device {escape(name)} from {escape(str(path))}", highlight=False)
    for folder in deleted:
        err.print(f"deleted {escape(folder)}", highlight=False)


def emulate_cmd(
    name: NameArg,
    profile: Annotated[
        str,
        typer.Option(
            help="What to emulate: a board (rpi4, rpi5, generic-arm64) or an x86 CPU class (x86-64-v3: AVX2, no "
            "AVX-512/VNNI; x86-64-v2: SSE4.2, no AVX)."
        ),
    ] = "rpi4",
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = None,
    mirror: Annotated[Optional[str], typer.Option(help="Debian archive URL (default: the one apt uses here).")] = None,
    force: ForceOpt = False,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Build the cached user space again (newest runtimes).")
    ] = False,
    devices: DevicesOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Emulate a board or an x86 CPU class on this machine (QEMU user mode, its CPU and runtimes) and register it.

    A board is built once into ~/.cache/sqnxt-edge (about 400 MB, a minute or two; needs root or fakeroot for
    debootstrap); an x86 class runs this machine's Python and runtimes and needs nothing built. `devices check`,
    `bench --device`, `eval --device` and `export --verify-on` then use it like a real board: for accuracy and
    behaviour on that CPU (its int8 kernels). Its latencies are the emulator's, never the board's speed.
    --threads is the board's default (1: more only cost host CPU under emulation); --timeout what one run may
    take (default 3600)."""
    from ..devices.emulate import emulate_device
    from ..progress import progress_bar

    with progress_bar(f"emulated {profile} board", total=None, enabled=not json_out or err.is_terminal) as step:
        device, info = emulate_device(
            name,
            profile,
            devices,
            force=force,
            rebuild=rebuild,
            threads=threads,
            timeout=timeout,
            mirror=mirror,
            say=lambda msg: step(0, msg),
        )
    if json_out:
        print_json({"devices_file": device.source, "device": device.to_dict(), **info})
        return
    if info["rootfs"]:
        how = f"built in {info['seconds']:.0f} s" if info["built"] else "from the cache"
        wheels = info["rootfs"]["wheels"]
        what = (
            f"({how}): Python {info['rootfs']['python']}, onnxruntime {wheels.get('onnxruntime')}, "
            f"ai-edge-litert {wheels.get('ai-edge-litert')}"
        )
    else:  # an x86 class: this machine's Python and runtimes under an older CPU
        what = f"(this machine's Python and runtimes: {info['python']})"
    err.print(
        f"emulated {escape(profile)} board {escape(name)} {escape(what)}; "
        f"check it with: sqnxt-edge devices check {escape(shlex.quote(name))}"
        + (f" --devices {escape(shlex.quote(str(devices)))}" if devices else ""),
        highlight=False,
    )


def check_cmd(
    name: NameArg,
    timeout: TimeoutOpt = None,
    devices: DevicesOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Connect (BatchMode), run the runner's --env-only on the board, report its Python, CPU, runtimes."""
    from ..devices import check_device

    report = check_device(name, devices, timeout)
    if json_out:
        print_json(report)
        return
    env, rts = report["env"], report["runtimes"]
    feats = env.get("features") or {}
    how = "emulated board started" if report["env"].get("emulated") else "reachable"
    table = Table(title=f"{escape(name)}: {how} in {report['seconds']} s", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("board", _fmt(env.get("board") or env.get("hostname")))
    table.add_row("python", _fmt(env.get("python")))
    table.add_row("arch / os", f"{_fmt(env.get('arch'))} / {_fmt(env.get('os'))}")
    table.add_row("CPU", f"{_fmt(env.get('model'))} x{_fmt(env.get('cores'))}")
    table.add_row(
        "features",
        " ".join(
            f"{k.upper()}={'yes' if feats.get(k) else 'no'}"
            for k in ("neon", "dotprod", "i8mm", "avx2", "avx512", "vnni")
            if k in feats
        ),
    )
    table.add_row("int8 dot product", _fmt(env.get("int8_dot")))
    if report.get("core_kinds"):  # big.LITTLE: which cores are which, and where to pin
        kinds = ", ".join(f"{escape(name)} on {cpus}" for name, cpus in report["core_kinds"].items())
        table.add_row("core types", kinds)
        if report.get("big_cores"):
            table.add_row("big cores", f"{report['big_cores']}: bench --cores {report['big_cores']} runs there")
    if env.get("emulated"):
        emu = env.get("emulation") or {}
        table.add_row(
            "emulated",
            f"[yellow]yes[/]: {escape(str(emu.get('emulator')))} -cpu {escape(str(emu.get('cpu')))} "
            f"on {escape(str((emu.get('host') or {}).get('model')))}; latencies are not the board's",
        )
    for rt in ("numpy", "onnxruntime", "litert", "tflite-runtime", "executorch"):
        if rt in rts:
            table.add_row(rt, "[green]" + escape(str(rts[rt])) + "[/]" if rts[rt] else "[yellow]missing[/]")
    out.print(table)
    if report["pip_install"]:
        err.print(
            f"missing on the board: {', '.join(report['missing'])}; install with:\n  {escape(report['pip_install'])}",
            highlight=False,
        )
    for w in report["warnings"]:
        err.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)


for _name, _fn in (
    ("list", list_cmd),
    ("show", show_cmd),
    ("add", add_cmd),
    ("remove", remove_cmd),
    ("check", check_cmd),
    ("emulate", emulate_cmd),
):
    devices_app.command(_name)(handle_errors(_fn))
