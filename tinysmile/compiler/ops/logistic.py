"""LOGISTIC (sigmoid), int8 in and out: a 256-entry table built as LiteRT builds it.

LiteRT's reference kernel for int8 LOGISTIC is a lookup table filled in Prepare: each
possible input byte is dequantized, 1 / (1 + exp(-x)) is evaluated in float32 (expf),
scaled by 1 / output_scale, rounded half away from zero and clamped. We fill the same
table at compile time with the same float32 steps; the C kernel only looks it up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from typing import Any

import numpy as np

from tinysmile.compiler.clits import CArray
from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.base import Emitted, OpDef, fail, require_int8, require_per_tensor

OUTPUT_SCALE = np.float32(1.0 / 256.0)


def _load_expf():
    """The C library's expf, the one LiteRT's std::exp(float) calls."""
    name = ctypes.util.find_library("m")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name).expf
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_float]
    return fn


_EXPF = _load_expf()


def expf(x: np.float32) -> np.float32:
    if _EXPF is not None:
        return np.float32(_EXPF(float(x)))
    # Without a C library: exp in double rounded to float32 is what a correctly rounded
    # expf returns, which glibc's is for all but a vanishing fraction of inputs.
    return np.float32(math.exp(float(x)))


def round_half_away_f32(x: np.float32) -> np.float32:
    """std::round on a float: halves go away from zero."""
    return np.float32(math.copysign(math.floor(abs(float(x)) + 0.5), float(x)))


def sigmoid_table(
    input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int
) -> np.ndarray:
    """int8 output for every int8 input, indexed by input + 128 (float32 throughout)."""
    scale = np.float32(input_scale)
    inverse_scale = np.float32(1.0) / np.float32(output_scale)
    one = np.float32(1.0)
    table = np.empty(256, dtype=np.int8)
    for q in range(-128, 128):
        x = scale * np.float32(q - input_zero_point)
        y = one / (one + expf(-x))
        rescaled = round_half_away_f32(np.float32(y * inverse_scale))
        quantized = int(np.float32(rescaled + np.float32(output_zero_point)))
        table[q + 128] = min(127, max(-128, quantized))
    return table


class Logistic(OpDef):
    kinds = ("LOGISTIC",)
    kernel = "logistic"
    in_place = True

    def validate(self, g: Graph, op: Op) -> None:
        require_int8(g, op, [op.inputs[0], op.outputs[0]])
        x, y = g.tensor(op.inputs[0]), g.op_output(op)
        require_per_tensor(op, x)
        require_per_tensor(op, y)
        if np.float32(y.scale) != OUTPUT_SCALE:
            raise fail(op, f"output '{y.name}' has scale {y.scale}; LOGISTIC needs 1/256")
        if x.shape != y.shape:
            raise fail(op, f"input shape {x.shape} differs from output shape {y.shape}")

    def prepare(self, g: Graph, op: Op) -> dict[str, Any]:
        x, y = g.tensor(op.inputs[0]), g.op_output(op)
        return {
            "size": x.size,
            "table": sigmoid_table(x.scale, x.zero_point, y.scale, y.zero_point),
        }

    def reference(self, g: Graph, op: Op, p: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
        return p["table"][xs[0].astype(np.int64) + 128]

    def emit(self, g: Graph, op: Op, p: dict[str, Any], name: str) -> Emitted:
        table = CArray(f"{name}_table", p["table"])
        return Emitted(
            kernel="tsm_logistic",
            params_type="tsm_logistic_params_t",
            fields=[("size", str(p["size"])), ("table", table.name)],
            arrays=[table],
            inputs=[op.inputs[0]],
        )
