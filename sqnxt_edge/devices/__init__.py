"""The boards a measurement runs on: the registry (`devices.toml`), hardware profiles as data, the SSH transport that
carries the one-file runner there, emulated boards (QEMU) that run the same job on this machine, and the board
check. Nothing here imports torch.
"""

from .check import check_device
from .emulate import emulate_device, unregister
from .profiles import PROFILES, Profile, get_profile, list_profiles, local_profile
from .registry import (
    Device,
    add_device,
    devices_path,
    get_calibration,
    get_device,
    load_calibrations,
    load_devices,
    load_groups,
    remove_device,
    render_toml,
    resolve_boards,
    set_calibration,
)
from .target import LOCAL, Target
from .transport import run_runner, runner_env

__all__ = [
    "Device",
    "devices_path",
    "load_devices",
    "get_device",
    "add_device",
    "remove_device",
    "render_toml",
    "Profile",
    "PROFILES",
    "get_profile",
    "list_profiles",
    "local_profile",
    "check_device",
    "run_runner",
    "Target",
    "LOCAL",
    "runner_env",
    "emulate_device",
    "unregister",
    "load_calibrations",
    "get_calibration",
    "set_calibration",
    "load_groups",
    "resolve_boards",
]
