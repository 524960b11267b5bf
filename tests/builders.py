"""Small real inputs the tests write for themselves: a tiny ONNX classifier and ImageFolder trees of coloured
squares (learnable in seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

COLORS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}


def write_tiny_onnx(
    path: Path,
    batch: int | str = "N",
    metadata: bool = True,
    node_names: bool = False,
    weights: np.ndarray | None = None,
    extra_meta: dict | None = None,
) -> Path:
    """A 4-class ONNX model (mean over HxW of a 3x8x8 input, then a matmul), built without torch; with `metadata`
    the export's metadata (preprocessing, classes), with `node_names` names like the exporter's (/pool/..., /fc/...).
    `weights` (3, classes) replace the random matmul (equal columns give tied logits); `extra_meta` adds keys."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w_array = np.random.RandomState(0).randn(3, 4) if weights is None else np.asarray(weights)
    w = numpy_helper.from_array(w_array.astype(np.float32), "W")
    k = w_array.shape[1]
    names = ({"name": "/pool/ReduceMean"}, {"name": "/fc/MatMul"}) if node_names else ({}, {})
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0, **names[0]),
            helper.make_node("MatMul", ["m", "W"], ["logits"], **names[1]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, k])],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        meta = {
            "model_name": "tiny",
            "input_size": 8,
            "layout": "NCHW",
            "mean": [0.5] * 3,
            "std": [0.25] * 3,
            "classes": list("abcd"),
            "precision": "fp32",
            **(extra_meta or {}),
        }
        for k, v in meta.items():
            model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=json.dumps(v)))
    onnx.save(model, path)
    return path


def write_color_folder(root: Path, per_class: dict[str, int], noise: float, size: int = 16, seed: int = 0) -> Path:
    """An ImageFolder tree root/<split>/<red|green|blue>/<i>.png: `per_class` images per split, colour + noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in per_class.items():
        for name, color in COLORS.items():
            (root / split / name).mkdir(parents=True)
            for j in range(n):
                img = np.clip(np.array(color) + rng.normal(0, noise, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(root / split / name / f"{j}.png")
    return root
