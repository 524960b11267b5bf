"""The space-to-depth stem: an exactly equivalent rewrite of a strided stem convolution over few input channels.

A KxK convolution of stride 2 over C channels (the ImageNet stem: 7x7/2 over RGB) equals, after padding the input
to an even side and rearranging every 2x2 pixel block into channels (ONNX `SpaceToDepth`, blocksize 2), a
ceil(K/2)xceil(K/2) convolution of stride 1 over 4C channels whose weights are the original ones zero-padded to an
even size and rearranged the same way. Same arithmetic, same output; the paper's own hardware-aware reasoning
(a 3-channel convolution keeps the multiply units poorly fed). Whether it is faster depends on the runtime and
precision: `benchmarks/runtimes/stem_s2d.py` measures it, and the export uses it only where that says it wins.
"""

from __future__ import annotations

import numpy as np

__all__ = ["space_to_depth_stem", "s2d_weights"]

BLOCK = 2


def s2d_weights(weight: np.ndarray) -> np.ndarray:
    """(O, C, K, K) stride-2 weights -> (O, 4C, ceil(K/2), ceil(K/2)) in SpaceToDepth's channel order
    ((row offset * 2 + column offset) * C + channel: ONNX's DCR order)."""
    o, c, kh, kw = weight.shape
    h2, w2 = -(-kh // BLOCK), -(-kw // BLOCK)
    padded = np.zeros((o, c, h2 * BLOCK, w2 * BLOCK), weight.dtype)
    padded[:, :, :kh, :kw] = weight
    blocks = padded.reshape(o, c, h2, BLOCK, w2, BLOCK).transpose(0, 3, 5, 1, 2, 4)
    return np.ascontiguousarray(blocks.reshape(o, BLOCK * BLOCK * c, h2, w2))


def _attr(node, name: str, default):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def space_to_depth_stem(model, max_channels: int = 4):
    """Rewrite `model`'s (an onnx.ModelProto, fixed input size) stem in place when it is a stride-2, ungrouped,
    undilated convolution reading the graph input directly over at most `max_channels` channels; returns a
    one-line description of what changed, or None (the model is left as it was)."""
    from onnx import helper, numpy_helper

    graph = model.graph
    if len(graph.input) != 1:
        return None
    source = graph.input[0]
    dims = [d.dim_value for d in source.type.tensor_type.shape.dim]
    if len(dims) != 4 or not all(dims[1:]):
        return None
    _, channels, height, width = dims
    users = [n for n in graph.node if source.name in n.input]
    if len(users) != 1 or users[0].op_type != "Conv" or channels > max_channels:
        return None
    conv = users[0]
    inits = {t.name: t for t in graph.initializer}
    if conv.input[0] != source.name or conv.input[1] not in inits:
        return None
    if _attr(conv, "strides", [1, 1]) != [BLOCK, BLOCK] or _attr(conv, "group", 1) != 1:
        return None
    if _attr(conv, "dilations", [1, 1]) != [1, 1] or _attr(conv, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        return None
    top, left, bottom, right = _attr(conv, "pads", [0, 0, 0, 0])
    weight = numpy_helper.to_array(inits[conv.input[1]])
    # pad as the convolution did, then to an even side (the extra row/column meets only zero weights)
    bottom += (height + top + bottom) % BLOCK
    right += (width + left + right) % BLOCK
    name = conv.name or "stem"
    pads = numpy_helper.from_array(np.array([0, 0, top, left, 0, 0, bottom, right], np.int64), f"{name}/s2d_pads")
    new_weight = numpy_helper.from_array(s2d_weights(weight), f"{name}/s2d_weight")
    graph.initializer.extend([pads, new_weight])
    pad = helper.make_node("Pad", [source.name, pads.name], [f"{name}/s2d_padded"], name=f"{name}/s2d_pad")
    s2d = helper.make_node("SpaceToDepth", pad.output, [f"{name}/s2d"], name=f"{name}/s2d", blocksize=BLOCK)
    inputs = [s2d.output[0], new_weight.name, *conv.input[2:]]
    kernel = list(s2d_weights(weight).shape[2:])
    new_conv = helper.make_node("Conv", inputs, list(conv.output), name=conv.name, kernel_shape=kernel)
    index = list(graph.node).index(conv)
    graph.node.remove(conv)
    for offset, node in enumerate((pad, s2d, new_conv)):
        graph.node.insert(index + offset, node)
    if not any(n.input[1:2] == [conv.input[1]] for n in graph.node):  # the old weight has no other user
        graph.initializer.remove(inits[conv.input[1]])
    kh, kw = weight.shape[2:]
    return (
        f"stem {kh}x{kw}/2 over {channels} channels -> {kernel[0]}x{kernel[1]}/1 over {4 * channels} (space-to-depth)"
    )
