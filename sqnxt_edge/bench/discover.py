"""What to measure when no artifact is named: every artifact of the newest export manifest, plus its checkpoint.

The export stage writes `export/<checkpoint>/manifest.json` with `artifacts` ({relative path: {path, format,
precision, ...}}, a list of such entries is accepted too) and the source checkpoint under `checkpoint.path`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import BenchError

__all__ = ["newest_manifest", "manifest_artifacts", "discover_artifacts"]


def newest_manifest(root: str | Path = "export") -> Path:
    """The most recently written export manifest under `root` (its own or one folder down)."""
    root = Path(root)
    found = [p for p in (*root.glob("manifest.json"), *root.glob("*/manifest.json")) if p.is_file()]
    if not found:
        raise BenchError(
            f"no artifact given and no export manifest under {root}/: run `sqnxt-edge export CKPT` "
            "first or name the artifacts"
        )
    return max(found, key=lambda p: p.stat().st_mtime)


def manifest_artifacts(manifest: Path) -> list[Path]:
    """The manifest's artifacts (paths resolved against its folder), then the checkpoint .pt if it still exists."""
    try:
        data = json.loads(Path(manifest).read_text(encoding="utf-8"))
        entries = data.get("artifacts") or []
        if isinstance(entries, dict):  # keyed by relative path (what the export stage writes)
            entries = [v if isinstance(v, dict) and "path" in v else k for k, v in entries.items()]
        paths = [Path(manifest).parent / str(e["path"] if isinstance(e, dict) else e) for e in entries]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BenchError(f"cannot read export manifest {manifest}: {exc}") from None
    ckpt = data.get("checkpoint") if isinstance(data.get("checkpoint"), dict) else {}
    if ckpt.get("path"):
        for candidate in (Path(ckpt["path"]), Path(manifest).parent / ckpt["path"]):
            if candidate.is_file():
                paths.append(candidate)
                break
    if not paths:
        raise BenchError(f"export manifest {manifest} lists no artifacts")
    return paths


def discover_artifacts(root: str | Path = "export") -> list[Path]:
    """The artifacts of the newest export under `root`: what `bench` measures when none are named."""
    return manifest_artifacts(newest_manifest(root))
