"""The artifact contract every stage stands on: how a file is written (atomically), fingerprinted (sha256), and
what it carries for the apps and runtimes that load it (metadata in ONNX `metadata_props` and a
`<artifact>.meta.json` sidecar, the runner's first source).

Export and quantize both write through here; the runner reads the same sidecar with its own `read_metadata`.
Nothing here imports torch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._version import __version__
from .errors import ExportError, SqnxtError, first_line
from .runner import companions, decode_metadata, read_metadata, sidecar_path

__all__ = [
    "atomic_write",
    "sha256_file",
    "sidecar_path",
    "read_metadata",
    "write_sidecar",
    "build_metadata",
    "embed_onnx_metadata",
    "read_onnx_metadata",
    "move_artifact",
    "descriptions",
    "OPS_CONFIG_SUFFIX",
    "copy_artifact",
    "utc_now",
]


def utc_now() -> str:
    """Now in UTC, to the second, ISO 8601 with a Z: the timestamp every written record carries."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Call `write(tmp_path)` on a temp file in the target folder, then rename: readers never see a half file and a
    failed write never replaces a good one. The file gets the mode a plain `open(path, "w")` gives under the user's
    umask (0644 under 022): `mkstemp`'s 0600 would survive the rename and hide sidecars and int8 models from a web
    server running as another user."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp, mode = _create_temp(path)
    except OSError as exc:
        raise SqnxtError(f"cannot write to {path.parent}: {exc.strerror or exc}") from None
    try:
        write(tmp)
        os.chmod(tmp, mode)  # a writer that replaced the file (unlink + create) may have left another mode
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _create_temp(path: Path) -> tuple[Path, int]:
    """A new hidden file beside `path`, created 0666 so the kernel applies the umask (no umask read, no race);
    returns it with the mode it got."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        try:
            return tmp, stat.S_IMODE(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
    raise FileExistsError(f"no free temporary name beside {path}")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (artifacts can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_sidecar(artifact: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """`<artifact>.meta.json` next to the artifact (atomic)."""
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    return atomic_write(sidecar_path(str(artifact)), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


# The reduced-build operator config onnxruntime's converter writes for a .ort (export/ort_export.py), kept beside it.
OPS_CONFIG_SUFFIX = ".required_operators_and_types.config"


def descriptions(artifact: str | os.PathLike) -> list[Path]:
    """The files written about an artifact that travel with it, present or not: its sidecar and (a .ort) its operator
    config. Not files it needs to run: a board is sent neither."""
    return [Path(sidecar_path(str(artifact))), Path(str(artifact) + OPS_CONFIG_SUFFIX)]


def move_artifact(src: Path, dest: Path) -> Path:
    """Rename an artifact, its descriptions (sidecar, operator config) and the files it needs beside it into place
    (same filesystem: each rename is atomic). The companions (ncnn's `.bin`) go first, so wherever the main file is,
    they are too."""
    for part, to in zip(companions(str(src)), companions(str(dest))):
        if os.path.isfile(part):
            os.replace(part, to)
    os.replace(src, dest)
    for side, there in zip(descriptions(src), descriptions(dest)):
        if side.is_file():
            os.replace(side, there)
    return dest


def copy_artifact(src: Path, out: Path, meta_from: Path | None = None) -> Path:
    """Atomic copy of an artifact, the files it needs beside it, and its sidecar (the sidecar of `meta_from` when
    given)."""
    for part, to in zip(companions(str(src)), companions(str(out))):
        if os.path.isfile(part):
            atomic_write(to, functools.partial(shutil.copyfile, part))
    atomic_write(out, lambda tmp: shutil.copyfile(src, tmp))
    side = Path(sidecar_path(str(meta_from or src)))
    if side.is_file():
        atomic_write(sidecar_path(str(out)), lambda tmp: shutil.copyfile(side, tmp))
    return out


def build_metadata(
    ckpt, precision: str, layout: str, input_name: str = "input", output_name: str = "logits", **extra: Any
) -> dict[str, Any]:
    """The metadata dict for one artifact of `ckpt` (a `Checkpoint`): what an app needs to feed it."""
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
        "input_dtype": "float32",  # every artifact but an --int8-io .tflite (whose extra says so)
        "output_dtype": "float32",
        "precision": precision,
        "dataset": ckpt.dataset,
        "toolkit": "sqnxt-edge",
        "toolkit_version": __version__,
        "source_checkpoint_sha256": ckpt.sha256,
        "created_utc": utc_now(),
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
            raise ExportError(f"{path} is not a readable ONNX model: {first_line(exc)}") from None
    else:
        import onnxruntime as ort

        try:
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ExportError(f"onnxruntime cannot load {path}: {first_line(exc)}") from None
        props = dict(sess.get_modelmeta().custom_metadata_map)
    return decode_metadata(props) if props else read_metadata(str(path))
