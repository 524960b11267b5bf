"""`--float-io`: a full-integer TFLite model given float32 input and output, the interface most app code feeds.

The int8 .tflite (ai-edge-quantizer, like litert-torch's PT2E path) has an int8 graph input and output: no QUANTIZE
first, no DEQUANTIZE last. This puts them back as ops inside the model, with the tensors' own scale and zero point,
using the TFLite flatbuffer schema that ships with ai-edge-litert (`schema_py_generated`, its object API): a new
float32 input feeds a QUANTIZE whose output is the old int8 input; the old int8 output feeds a DEQUANTIZE whose output
is the new float32 output; the signature is re-pointed. The integer graph in between is untouched, so the numbers are
the same ones the int8-I/O model gives after the app's own (de)quantization.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ExportError, first_line, require

__all__ = ["float_interface"]


def _opcode(schema, model, builtin: int) -> int:
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _float_twin(schema, model, sg, index: int, suffix: str) -> int:
    """A float32 tensor shaped like tensor `index`, with its own empty buffer; returns its index."""
    old = sg.tensors[index]
    twin = schema.TensorT()
    twin.shape, twin.shapeSignature = old.shape, old.shapeSignature
    twin.type, twin.name = schema.TensorType.FLOAT32, (old.name or b"t") + suffix.encode()
    model.buffers.append(schema.BufferT())
    twin.buffer = len(model.buffers) - 1
    sg.tensors.append(twin)
    return len(sg.tensors) - 1


def _op(schema, opcode: int, inputs: list[int], outputs: list[int]):
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = opcode, inputs, outputs
    return op


def float_interface(path: Path) -> Path:
    """Rewrite `path` in place (the caller stages it) with float32 I/O around its int8 input and output."""
    require("ai_edge_litert", "tflite", "--float-io")
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    raw = Path(path).read_bytes()
    try:
        model = schema.ModelT.InitFromPackedBuf(raw, 0)
        for buf in model.buffers or []:  # stored after the flatbuffer (ai-edge-quantizer does): inline, since the
            if (buf.offset or 0) > 1:  # rewritten flatbuffer has another length and the offsets would be wrong
                buf.data = np.frombuffer(raw, np.uint8, buf.size, buf.offset)
                buf.offset = buf.size = 0
        sg = model.subgraphs[0]
        (inp,), (out,) = sg.inputs, sg.outputs
        ints = (schema.TensorType.INT8, schema.TensorType.UINT8)
        if sg.tensors[inp].type not in ints or sg.tensors[out].type not in ints:
            raise ExportError(f"{Path(path).name}: --float-io needs int8 input and output, the model already has float")
        new_in, new_out = _float_twin(schema, model, sg, inp, "_float"), _float_twin(schema, model, sg, out, "_float")
        quantize = _op(schema, _opcode(schema, model, schema.BuiltinOperator.QUANTIZE), [new_in], [inp])
        dequantize = _op(schema, _opcode(schema, model, schema.BuiltinOperator.DEQUANTIZE), [out], [new_out])
        sg.operators = [quantize, *sg.operators, dequantize]
        sg.inputs, sg.outputs = [new_in], [new_out]
        for sig in model.signatureDefs or []:
            for item, old, new in ((sig.inputs, inp, new_in), (sig.outputs, out, new_out)):
                for tensor_map in item or []:
                    if tensor_map.tensorIndex == old:
                        tensor_map.tensorIndex = new
        builder = flatbuffers.Builder(len(raw) + 4096)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    except ExportError:
        raise
    except Exception as exc:  # a schema the bindings do not know, a model with several subgraphs ...
        raise ExportError(f"--float-io could not rewrite {Path(path).name}: {first_line(exc)}") from None
    Path(path).write_bytes(bytes(builder.Output()))
    return Path(path)
