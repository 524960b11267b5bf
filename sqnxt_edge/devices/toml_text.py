"""TOML as the device registry reads and writes it: parsing with the standard library (tomli before 3.11), and the
small writer the registry needs (strings, keys, numbers, lists, nested tables), so no TOML writer is a dependency."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ..errors import DeviceError

__all__ = ["toml_loads", "toml_key", "toml_value", "render_table"]


def toml_loads(text: str, path: Path) -> dict:
    """The parsed registry, or a one-line DeviceError naming the file."""
    try:
        if sys.version_info >= (3, 11):
            import tomllib
        else:
            import tomli as tomllib  # the same API, from PyPI
    except ImportError:
        raise DeviceError("reading devices.toml on Python 3.10 needs tomli: pip install tomli") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DeviceError(f"{path}: not valid TOML: {exc}") from None


def _toml_str(value: str) -> str:
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    """A bare key when TOML allows one, else a quoted string."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_str(key)


def toml_value(value) -> str:
    """A TOML literal for a bool, number, string or list of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return _toml_str(str(value))


def render_table(keys: list[str], data: dict) -> list[str]:
    """`[a.b.c]` and its values, nested dicts as sub-tables after them."""
    lines = ["[" + ".".join(toml_key(k) for k in keys) + "]"]
    lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in data.items() if v is not None and not isinstance(v, dict)]
    for key, value in data.items():
        if isinstance(value, dict):
            lines += ["", *render_table([*keys, key], value)]
    return lines
