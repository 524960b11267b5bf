"""The device registry: named boards reachable over the user's OpenSSH.

Where it lives (first that applies): `--devices FILE`, `$SQNXT_EDGE_DEVICES`,
`$XDG_CONFIG_HOME/sqnxt-edge/devices.toml` (default `~/.config/sqnxt-edge/devices.toml`).

Schema, one table per device::

    [devices.rpi4]
    host = "pi@raspberrypi.local"   # required: an ssh target or a ~/.ssh/config alias
    user = "pi"                     # optional, else from host / ssh config
    port = 22                       # optional
    identity = "~/.ssh/id_ed25519"  # optional private key FILE (-i); its contents are never read or logged
    python = "/home/pi/venv/bin/python"  # default "python3": the Python that has numpy + the runtimes
    threads = 4                     # default: the profile's cores
    profile = "rpi4"                # a built-in profile: rpi4, rpi5, jetson-nano, generic-arm64, local
    workdir = "/tmp"                # remote base for the temp folder (mktemp -d), default /tmp
    ssh_options = ["ProxyJump=bastion"]   # extra `-o` options
    ssh_config = "~/.ssh/config.boards"    # optional `-F FILE`
    connect_timeout = 10            # seconds (ssh ConnectTimeout), default 10
    timeout = 600                   # seconds for a whole remote run, default 600

An emulated board (`sqnxt-edge devices emulate`) has no host; instead::

    emulate = "rpi4"                # what QEMU emulates: rpi4, rpi5, generic-arm64, x86-64-v3, x86-64-v2
    rootfs = "~/.cache/sqnxt-edge/emulate/boards/..."   # its folder, written by `devices emulate`

A group names several boards, which `bench --device GROUP` measures at once::

    [groups]
    lab = ["rpi4", "rpi5", "jetson"]

Host-key checking is left to the user's ssh configuration. `devices add` appends to the file (comments kept);
`--force` and `devices remove` rewrite it. `[calibration.NAME.PRECISION]` tables (NAME a device or "local") hold
cost-model factors that `sqnxt-edge estimate --calibrate` fitted from one profile measured there (only it writes them).
"""

from __future__ import annotations

import math
import os
import re
import shlex
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from ..artifacts import atomic_write
from ..errors import DeviceError
from .cpus import EMULATED
from .profiles import PROFILES, Profile, get_profile, list_profiles
from .toml_text import render_table, toml_key, toml_loads, toml_value

__all__ = [
    "Device",
    "devices_path",
    "load_devices",
    "get_device",
    "add_device",
    "remove_device",
    "render_toml",
    "load_calibrations",
    "get_calibration",
    "set_calibration",
    "load_groups",
    "resolve_boards",
]

ENV_VAR = "SQNXT_EDGE_DEVICES"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True)
class Device:
    """One registered board (see the module docstring for the meaning of each field)."""

    name: str
    host: str = ""
    user: str | None = None
    port: int | None = None
    identity: str | None = None
    python: str = "python3"
    threads: int | None = None
    profile: str | None = None
    workdir: str = "/tmp"
    ssh_options: tuple[str, ...] = ()
    ssh_config: str | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    timeout: float = DEFAULT_TIMEOUT
    emulate: str | None = None  # an emulated board (devices/emulate.py): the profile it emulates
    rootfs: str | None = None  # ... and its folder
    source: str | None = field(default=None, compare=False)  # the devices.toml it came from

    @property
    def profile_info(self) -> Profile | None:
        """The hardware profile the device names, or None."""
        return get_profile(self.profile) if self.profile else None

    @property
    def default_threads(self) -> int | None:
        """Threads to run with: the device's own setting, else its profile's cores."""
        if self.threads:
            return self.threads
        prof = self.profile_info
        return prof.cores if prof else None

    @property
    def target(self) -> str:
        """user@host for messages (ssh itself gets the user through -o User=)."""
        if self.emulate:
            return f"emulated {self.emulate}"
        return f"{self.user}@{self.host}" if self.user and "@" not in self.host else self.host

    def to_dict(self) -> dict:
        """The device as JSON-ready data (tuples as lists)."""
        d = asdict(self)
        d["ssh_options"] = list(self.ssh_options)
        return d


_KEYS = {f.name for f in fields(Device)} - {"name", "source"}


def devices_path(devices_file: str | os.PathLike | None = None) -> Path:
    """The registry file: the flag, else $SQNXT_EDGE_DEVICES, else the XDG config folder."""
    if devices_file:
        return Path(devices_file).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "sqnxt-edge" / "devices.toml"


def _check_str(name: str, key: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DeviceError(f"device {name!r}: {key} must be a non-empty string")
    if any(c in value for c in "\n\r\x00"):
        raise DeviceError(f"device {name!r}: {key} must be one line")
    return value


def _number(name: str, key: str, value, kind=float, minimum=0.0):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= minimum:
        raise DeviceError(f"device {name!r}: {key} must be a number above {minimum:g}, got {value!r}")
    if kind is int and value != int(value):
        raise DeviceError(f"device {name!r}: {key} must be a whole number, got {value!r}")
    return kind(value)


def make_device(name: str, data: dict, source: str | None = None) -> Device:
    """Validate one `[devices.NAME]` table into a Device (one-line DeviceError on any bad field)."""
    if not isinstance(data, dict):
        raise DeviceError(f"device {name!r}: expected a table of settings")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise DeviceError(
            f"device {name!r}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})"
        )
    if "emulate" in data:
        return _emulated(name, data, source)
    if "rootfs" in data:
        raise DeviceError(f"device {name!r}: rootfs belongs to emulated boards (emulate = PROFILE)")
    if "host" not in data:
        raise DeviceError(f"device {name!r}: host is required (an ssh target such as pi@raspberrypi.local)")
    kw: dict = {"name": name, "source": source}
    host = _check_str(name, "host", data["host"])
    if host.startswith("-") or any(c.isspace() for c in host):
        raise DeviceError(f"device {name!r}: host {host!r} is not an ssh target")
    kw["host"] = host
    for key in ("user", "identity", "python", "profile", "workdir", "ssh_config"):
        if key in data:
            kw[key] = _check_str(name, key, data[key])
    if kw.get("user", "").startswith("-"):
        raise DeviceError(f"device {name!r}: user {kw['user']!r} is not a user name")
    if "port" in data:
        kw["port"] = _number(name, "port", data["port"], int)
        if kw["port"] > 65535:
            raise DeviceError(f"device {name!r}: port must be 1-65535")
    if "threads" in data:
        kw["threads"] = _number(name, "threads", data["threads"], int)
    for key in ("connect_timeout", "timeout"):
        if key in data:
            kw[key] = _number(name, key, data[key])
    if "ssh_options" in data:
        opts = data["ssh_options"]
        if isinstance(opts, str):
            opts = [opts]
        if not isinstance(opts, list) or not all(isinstance(o, str) and ("=" in o or " " in o.strip()) for o in opts):
            raise DeviceError(f'device {name!r}: ssh_options must be a list like ["Option=value"]')
        kw["ssh_options"] = tuple(_check_str(name, "ssh_options", o) for o in opts)
    if kw.get("profile") and kw["profile"] not in list_profiles():
        raise DeviceError(
            f"device {name!r}: unknown profile {kw['profile']!r} (built in: {', '.join(list_profiles())})"
        )
    if kw.get("workdir") and not re.fullmatch(r"/[A-Za-z0-9._/+-]*", kw["workdir"]):
        raise DeviceError(f"device {name!r}: workdir must be an absolute plain path (letters, digits, . _ - / +)")
    return Device(**kw)


SSH_KEYS = ("host", "user", "port", "identity", "ssh_options", "ssh_config", "connect_timeout", "workdir")


def _emulated(name: str, data: dict, source: str | None) -> Device:
    """An emulated board: no SSH settings, an emulated CPU (cpus.EMULATED) and the folder `devices emulate` built."""
    ssh = sorted(k for k in SSH_KEYS if k in data)
    if ssh:
        raise DeviceError(f"device {name!r}: an emulated board has no {', '.join(ssh)} (it runs on this machine)")
    emulate = _check_str(name, "emulate", data["emulate"])
    if emulate not in EMULATED:
        raise DeviceError(f"device {name!r}: emulate must be one of {', '.join(EMULATED)}, got {emulate!r}")
    if "rootfs" not in data or not os.path.isabs(os.path.expanduser(_check_str(name, "rootfs", data["rootfs"]))):
        how = f"build it with: sqnxt-edge devices emulate {shlex.quote(name)} --profile {emulate} --force"
        raise DeviceError(f"device {name!r}: an emulated board needs rootfs = its absolute folder ({how})")
    rest = make_device(name, {"host": "emulated", **{k: v for k, v in data.items() if k not in ("emulate", "rootfs")}})
    return replace(rest, host="", emulate=emulate, rootfs=os.path.expanduser(data["rootfs"]), source=source)


def _load(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DeviceError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return toml_loads(text, path)


def load_devices(devices_file: str | os.PathLike | None = None) -> dict[str, Device]:
    """Every device in the registry ({} when the file does not exist yet)."""
    path = devices_path(devices_file)
    data = _load(path)
    table = data.get("devices", {})
    if not isinstance(table, dict):
        raise DeviceError(f"{path}: [devices] must be a table of [devices.NAME] tables")
    return {name: make_device(name, value, str(path)) for name, value in table.items()}


def _how_to_add(name: str, path: Path) -> str:
    prof = f" --profile {name}" if name in PROFILES else ""
    host = "pi@raspberrypi.local" if name.startswith("rpi") else "USER@HOST"
    flag = "" if path == devices_path(None) else f" --devices {shlex.quote(str(path))}"
    return f"sqnxt-edge devices add {shlex.quote(name)} --host {host}{prof}{flag}"


def get_device(name: str, devices_file: str | os.PathLike | None = None) -> Device:
    """The registered device `name`, or a one-line DeviceError that says how to register it."""
    devices = load_devices(devices_file)
    if name in devices:
        return devices[name]
    path = devices_path(devices_file)
    if name in PROFILES or name == "local":
        what = f"{name!r} is a built-in hardware profile, but no board of that name is registered in {path}"
        if name == "local":
            raise DeviceError(f"{what}; the local machine needs no device: drop --device")
        raise DeviceError(f"{what}; add it with: {_how_to_add(name, path)}")
    known = ", ".join(sorted(devices)) or "none registered"
    raise DeviceError(f"unknown device {name!r} (in {path}: {known}); add it with: {_how_to_add(name, path)}")


def load_groups(devices_file: str | os.PathLike | None = None) -> dict[str, list[str]]:
    """{group: [device, ...]} from the registry's `[groups]` table."""
    path = devices_path(devices_file)
    table = _load(path).get("groups", {})
    ok = isinstance(table, dict) and all(
        isinstance(v, list) and v and all(isinstance(n, str) for n in v) for v in table.values()
    )
    if not ok:
        raise DeviceError(f'{path}: [groups] must hold lists of device names, like lab = ["rpi4", "rpi5"]')
    return {name: list(members) for name, members in table.items()}


def resolve_boards(names: list[str], devices_file: str | os.PathLike | None = None) -> list[str]:
    """The boards `names` mean, in order and once each: a device (or "local") as itself, a group as its devices."""
    groups = load_groups(devices_file) if any(n != "local" for n in names) else {}
    devices = load_devices(devices_file) if groups else {}
    out: list[str] = []
    for name in names:
        members = groups[name] if name in groups and name not in devices else [name]
        for member in members:
            if member in groups and member not in devices:
                raise DeviceError(f"group {name!r} names the group {member!r}: list its devices instead")
            out += [] if member in out else [member]
    return out


# -- writing ------------------------------------------------------------------------------------------------------


def render_toml(device: Device) -> str:
    """One `[devices.NAME]` table; only settings that differ from the defaults are written."""
    defaults = Device(name=device.name, host=device.host)
    lines = [f"[devices.{toml_key(device.name)}]"]
    for key in [f.name for f in fields(Device)]:
        if key in ("name", "source"):
            continue
        value = getattr(device, key)
        if (key != "host" or device.emulate) and (value is None or value == getattr(defaults, key)):
            continue
        lines.append(f"{key} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> Path:
    toml_loads(text, path)  # never write a file we could not read back
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def add_device(device: Device, devices_file: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Register `device` (validated); an existing name needs force=True. Returns the file written."""
    defaults = {f.name: f.default for f in fields(Device)}
    device = make_device(
        device.name,
        {
            k: v
            for k, v in device.to_dict().items()
            if k not in ("name", "source") and v not in (None, [], (), "") and (k == "host" or v != defaults[k])
        },
    )
    path = devices_path(devices_file)
    existing = load_devices(path)
    if device.name in existing and not force:
        raise DeviceError(f"device {device.name!r} already exists in {path}; use --force to replace it")
    if device.name in existing:
        return _write(path, _rendered({**existing, device.name: device}, load_calibrations(path), path))
    return _write(path, _appended(path, render_toml(device)))


def remove_device(name: str, devices_file: str | os.PathLike | None = None) -> Path:
    """Unregister `name` (the file is rewritten without it)."""
    path = devices_path(devices_file)
    existing = load_devices(path)
    if name not in existing:
        raise DeviceError(f"no device {name!r} in {path}")
    calibrations = {n: c for n, c in load_calibrations(path).items() if n != name}
    return _write(path, _rendered({n: d for n, d in existing.items() if n != name}, calibrations, path))


# -- calibration ---------------------------------------------------------------------------------------------------


def load_calibrations(devices_file: str | os.PathLike | None = None) -> dict[str, dict]:
    """{device or "local": {precision: factors}} from the registry's `[calibration.*]` tables."""
    path = devices_path(devices_file)
    table = _load(path).get("calibration", {})
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise DeviceError(f"{path}: [calibration] must hold [calibration.NAME.PRECISION] tables")
    return table


def get_calibration(name: str, precision: str, devices_file: str | os.PathLike | None = None) -> dict | None:
    """The stored cost-model calibration for a board and precision, or None."""
    found = load_calibrations(devices_file).get(name, {}).get(precision)
    return found if isinstance(found, dict) else None


def set_calibration(name: str, precision: str, factors: dict, devices_file: str | os.PathLike | None = None) -> Path:
    """Store `factors` as `[calibration.NAME.PRECISION]` (NAME: a registered device or "local")."""
    path = devices_path(devices_file)
    if name != "local":
        get_device(name, path)
    calibrations = load_calibrations(path)
    if name not in calibrations or precision not in calibrations[name]:  # append: the user's comments stay
        return _write(path, _appended(path, _render_calibrations({name: {precision: factors}})))
    calibrations[name][precision] = factors
    return _write(path, _rendered(load_devices(path), calibrations, path))


def _appended(path: Path, block: str) -> str:
    """The registry's text with `block` added at the end (the user's comments and layout kept)."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    return (old.rstrip("\n") + "\n\n" if old.strip() else "") + block


def _rendered(devices: dict[str, Device], calibrations: dict[str, dict], path: Path | None = None) -> str:
    """The whole registry written anew (what --force, remove and a changed calibration need); the groups of `path`
    are kept."""
    groups = load_groups(path) if path is not None else {}
    text = "".join(render_toml(d) + "\n" for d in devices.values()) + _render_calibrations(calibrations)
    return text + ("\n".join(render_table(["groups"], groups)) + "\n" if groups else "")


def _render_calibrations(calibrations: dict[str, dict]) -> str:
    return "".join(
        "\n".join(render_table(["calibration", name, precision], factors)) + "\n\n"
        for name, by_precision in calibrations.items()
        for precision, factors in by_precision.items()
    )
