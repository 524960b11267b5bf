"""`manifest.json` next to the artifacts: what was exported from which checkpoint, with which tools, and how each
artifact verified. Re-exporting into the same folder updates the entries of the rewritten artifacts."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ..artifacts import atomic_write
from .config import TOLERANCES

__all__ = ["MANIFEST_NAME", "tool_versions", "load_manifest", "update_manifest"]

MANIFEST_NAME = "manifest.json"
_TOOLS = (
    "sqnxt-edge",
    "torch",
    "onnx",
    "onnxruntime",
    "onnxsim",
    "litert-torch",
    "ai-edge-litert",
    "ai-edge-quantizer",
    "pnnx",
    "ncnn",
    "numpy",
)


def tool_versions(names: tuple[str, ...] = _TOOLS) -> dict[str, str]:
    """Versions of the converters and runtimes that made the artifacts (missing ones left out)."""
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def load_manifest(folder: Path) -> dict[str, Any]:
    """The folder's manifest, or an empty one when it is missing or unreadable (it is rewritten whole)."""
    path = folder / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("artifacts"), dict):
            return data
    except (OSError, ValueError):
        pass
    return {"artifacts": {}}


def update_manifest(
    folder: Path, checkpoint: dict[str, Any], entries: list[dict[str, Any]], config: dict[str, Any], created_utc: str
) -> tuple[Path, dict[str, Any]]:
    """Merge `entries` (keyed by their relative path) into the folder's manifest and write it atomically."""
    data = load_manifest(folder)
    if data.get("checkpoint", {}).get("sha256") not in (None, checkpoint.get("sha256")):
        data = {"artifacts": {}}  # another checkpoint exported here before: its entries no longer describe files
    data["format"] = "sqnxt-edge-export-manifest"
    data["format_version"] = 1
    data["checkpoint"] = checkpoint
    data["updated_utc"] = created_utc
    data["export_config"] = config
    data["parity_criteria"] = TOLERANCES
    for entry in entries:
        data["artifacts"][entry["path"]] = entry
    data["artifacts"] = {k: v for k, v in data["artifacts"].items() if (folder / k).is_file()}
    text = json.dumps(data, indent=2, default=str) + "\n"
    path = atomic_write(folder / MANIFEST_NAME, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path, data
