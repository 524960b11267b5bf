"""The preprocessing facts an app needs, carried by every artifact: in ONNX `metadata_props` (values are JSON strings)
and in a `<artifact>.meta.json` sidecar (the only place for .tflite; the runner reads the sidecar first)."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..bench.runner import sidecar_path
from ..errors import ExportError

__all__ = ["build_metadata", "embed_onnx_metadata", "read_onnx_metadata", "write_sidecar"]


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def build_metadata(ckpt, precision: str, layout: str, input_name: str = "input", output_name: str = "logits",
                   **extra: Any) -> dict[str, Any]:
    """The metadata dict for one artifact of `ckpt` (a `Checkpoint`)."""
    from .. import __version__

    meta = {
        "model_name": ckpt.model_name,
        "classes": ckpt.class_names(),
        "num_classes": int(ckpt.num_classes),
        "mean": [float(v) for v in ckpt.mean],
        "std": [float(v) for v in ckpt.std],
        "input_size": int(ckpt.input_size),
        "in_channels": int(ckpt.in_channels),
        "layout": layout,
        "input_name": input_name,
        "output_name": output_name,
        "precision": precision,
        "dataset": ckpt.dataset,
        "toolkit": "sqnxt-edge",
        "toolkit_version": __version__,
        "source_checkpoint_sha256": ckpt.sha256,
        "created_utc": _now(),
    }
    meta.update(extra)
    return meta


def embed_onnx_metadata(model, meta: dict[str, Any]) -> None:
    """Replace `model.metadata_props` (an onnx.ModelProto) with `meta`, each value JSON-encoded."""
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=str(key), value=json.dumps(value))


def read_onnx_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata an exported ONNX (or .ort) model carries, decoded from JSON.

    Plain onnxruntime, without sqnxt-edge::

        import json, onnxruntime as ort
        sess = ort.InferenceSession("1.0-SqNxt-23.fp32.onnx")
        meta = {k: json.loads(v) for k, v in sess.get_modelmeta().custom_metadata_map.items()}
        x = (rgb_uint8 / 255 - meta["mean"]) / meta["std"]   # HWC at meta["input_size"], then to NCHW
        logits = sess.run(["logits"], {"input": x.transpose(2, 0, 1)[None].astype("float32")})[0]
        label = meta["classes"][logits.argmax()]
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"model not found: {path}")
    if path.suffix.lower() == ".onnx":
        import onnx

        try:
            props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        except Exception as exc:  # protobuf raises DecodeError and friends
            raise ExportError(f"{path} is not a readable ONNX model: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    else:
        import onnxruntime as ort

        try:
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ExportError(f"onnxruntime cannot load {path}: {str(exc).splitlines()[0]}") from None
        props = dict(sess.get_modelmeta().custom_metadata_map)
    if not props and Path(sidecar_path(str(path))).is_file():
        return json.loads(Path(sidecar_path(str(path))).read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    for key, value in props.items():
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def write_sidecar(artifact: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """`<artifact>.meta.json` next to the artifact, the runner's first metadata source (atomic: temp + rename)."""
    from ..checkpoint import atomic_write

    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    return atomic_write(sidecar_path(str(artifact)), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
