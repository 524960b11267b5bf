"""Layer names in exported graphs: the one reading of the ONNX exporter's scoped node names, shared by the int8
quantizer (which shortens node names) and the profiler (which maps profiled nodes back to the model's layers), so a
per-layer int8 profile maps exactly when the two agree by construction. Standard library only.
"""

from __future__ import annotations

__all__ = ["module_path", "short_scope"]


def module_path(node_name: str) -> str:
    """`/stages/stages.0/stages.0.0/reduce1/reduce1.2/Relu_output_0_nchwc` -> `stages.0.0.reduce1.2`.

    The TorchScript exporter writes one scope per module, each spelled relative to the last named attribute
    (`stages`, `stages.0`, `stages.0.0`, `reduce1`, `reduce1.2`); the last part is the op (or its output tensor).
    """
    path: list[str] = []
    for part in (p for p in node_name.split("/")[:-1] if p):
        if path and part.startswith(path[-1] + "."):
            path[-1] = part
        else:
            path.append(part)
    return ".".join(path)


def short_scope(name: str) -> str:
    """`/stages/stages.0/stages.0.0/reduce1/reduce1.0/Conv` -> `stages.0.0.reduce1.0/Conv`: the module path and the
    op, half the bytes; `module_path` reads it back unchanged."""
    path, op = module_path(name), name.split("/")[-1]
    return f"{path}/{op}" if path else op
