"""LiteRT with its reference kernels (BUILTIN_REF): the oracle generated code must match.

The default XNNPACK / optimized path rounds differently in places and is not an oracle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def litert_interpreter(model: str | Path | bytes):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    content = model if isinstance(model, bytes | bytearray) else Path(model).read_bytes()
    interp = Interpreter(
        model_content=bytes(content),
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
    )
    interp.allocate_tensors()
    return interp


def _to_model_input(detail: dict, x: np.ndarray, int8_quant: tuple[float, int] | None):
    if detail["dtype"] == np.float32 and int8_quant is not None:
        scale, zp = int8_quant
        return (np.float32(scale) * (x.astype(np.float32) - np.float32(zp))).astype(np.float32)
    return x.astype(detail["dtype"])


def litert_reference(
    model: str | Path | bytes,
    inputs: np.ndarray,
    input_quant: tuple[float, int] | None = None,
    output_quant: tuple[float, int] | None = None,
) -> np.ndarray:
    """Run each input (batch first, int8) through LiteRT BUILTIN_REF; int8 outputs.

    For a model with float edges (QUANTIZE/DEQUANTIZE), pass the int8 quantization of the
    stripped edges: inputs are dequantized exactly and outputs quantized back.
    """
    interp = litert_interpreter(model)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    inputs = np.asarray(inputs)
    results = []
    for row in inputs.reshape(inputs.shape[0], -1):
        interp.set_tensor(
            inp["index"], _to_model_input(inp, row, input_quant).reshape(inp["shape"])
        )
        interp.invoke()
        y = interp.get_tensor(out["index"])
        if y.dtype == np.float32 and output_quant is not None:
            scale, zp = output_quant
            y = np.clip(np.round(y / np.float32(scale)) + zp, -128, 127).astype(np.int8)
        results.append(y.reshape(out["shape"]).copy())
    return np.stack(results)
