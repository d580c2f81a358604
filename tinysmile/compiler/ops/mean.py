"""MEAN over height and width of an NHWC tensor (global average pooling), int8.

LiteRT's reference kernel (reference_ops::QuantizedMeanOrSum) sums the raw int8 values of
each (batch, channel) into int32, removes zero_point * count, and requantizes with
input_scale / output_scale (QuantizeMultiplier in double) whose multiplier has the
1/count folded in: shift = floor(log2(count)) capped at 32 and at 31 + output_shift,
multiplier = (multiplier << shift) / count truncated, output_shift -= shift. The usual
MultiplyByQuantizedMultiplier rounding follows, then the output zero point and clamp.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.base import (
    Emitted,
    OpDef,
    fail,
    int_fields,
    require_int8,
    require_per_tensor,
)
from tinysmile.compiler.quant import quantize_multiplier, requantize


def mean_multiplier(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """(output_multiplier, output_shift) with 1/count folded in, as the reference does."""
    multiplier, shift = quantize_multiplier(float(input_scale) / float(output_scale))
    count_shift = min(count.bit_length() - 1, 32, 31 + shift)
    return (multiplier << count_shift) // count, shift - count_shift


FIELDS = [
    "batches",
    "input_h",
    "input_w",
    "channels",
    "input_zero_point",
    "output_zero_point",
    "output_multiplier",
    "output_shift",
]


class Mean(OpDef):
    kinds = ("MEAN",)
    min_inputs = 2
    options = "ReducerOptions"
    kernel = "mean"

    def validate(self, g: Graph, op: Op) -> None:
        require_int8(g, op, [op.inputs[0], op.outputs[0]])
        x, y = g.tensor(op.inputs[0]), g.op_output(op)
        require_per_tensor(op, x)
        require_per_tensor(op, y)
        if len(x.shape) != 4:
            raise fail(op, f"input '{x.name}' is {len(x.shape)}-D; only 4-D NHWC is supported")
        axis = g.tensor(op.inputs[1])
        if not axis.is_const:
            raise fail(op, f"axis '{axis.name}' is not constant")
        axes = sorted({int(a) % 4 for a in np.asarray(axis.data).ravel()})
        if axes != [1, 2]:
            raise fail(op, f"axis {np.asarray(axis.data).ravel().tolist()}: only [1, 2] (H, W)")
        n, h, w, c = x.shape
        if h * w >= 1 << 23:
            # the int32 sum of up to 255 * count must not overflow
            raise fail(op, f"{h}x{w} values per channel is too many to average in int32")
        expected = (n, 1, 1, c) if op.options.get("keep_dims") else (n, c)
        if tuple(y.shape) != expected:
            raise fail(op, f"output shape {y.shape}, expected {expected}")

    def prepare(self, g: Graph, op: Op) -> dict[str, Any]:
        x, y = g.tensor(op.inputs[0]), g.op_output(op)
        n, h, w, c = x.shape
        multiplier, shift = mean_multiplier(
            float(np.float32(x.scale)), float(np.float32(y.scale)), h * w
        )
        return {
            "batches": n,
            "input_h": h,
            "input_w": w,
            "channels": c,
            "input_zero_point": x.zero_point,
            "output_zero_point": y.zero_point,
            "output_multiplier": multiplier,
            "output_shift": shift,
        }

    def reference(self, g: Graph, op: Op, p: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0].astype(np.int64).reshape(p["batches"], -1, p["channels"])
        count = p["input_h"] * p["input_w"]
        total = x.sum(axis=1) - p["input_zero_point"] * count
        y = requantize(total, p["output_multiplier"], p["output_shift"]) + p["output_zero_point"]
        return np.clip(y, -128, 127).astype(np.int8)

    def emit(self, g: Graph, op: Op, p: dict[str, Any], name: str) -> Emitted:
        return Emitted(
            kernel="tsm_mean",
            params_type="tsm_mean_params_t",
            fields=int_fields(p, FIELDS),
            inputs=[op.inputs[0]],
        )

    def macs(self, g: Graph, op: Op) -> int:
        return g.tensor(op.inputs[0]).size
