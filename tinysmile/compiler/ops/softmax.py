"""SOFTMAX along the last axis, int8 in and out (output scale 1/256, zero point -128).

LiteRT's reference kernel (reference_ops::Softmax for int8) works in gemmlowp fixed
point: each difference x - max is scaled by beta * input_scale into Q5.26 with a
rounding doubling high multiply (PreprocessSoftmaxScaling, computed in double), exp of it
comes back in Q0, the exps are summed in Q12 after a rounding shift, the sum's
reciprocal is taken with GetReciprocal (Newton-Raphson) and each output is that
reciprocal times its exp, shifted down with rounding and offset by -128. Differences
below diff_min (CalculateInputRadius) contribute nothing and give -128.

A row's difference to its maximum is one of 256 values, so exp(scaled difference) is a
256-entry int32 table computed here; the sum, reciprocal and final scaling run in C
(tsm_softmax) and in the numpy twin below, step for step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinysmile.compiler.clits import CArray
from tinysmile.compiler.fixedpoint import exp_on_negative_values, get_reciprocal, srdhm
from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.base import Emitted, OpDef, fail, require_int8, require_per_tensor
from tinysmile.compiler.quant import (
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

SCALED_DIFF_INTEGER_BITS = 5  # exp's input is Q5.26
ACCUMULATION_INTEGER_BITS = 12  # the sum of exps is Q12.19
# Each exp adds at most 2^19 to the Q12 sum. TFLite requires the final shift
# (35 - leading zeros of the sum) to be at most 31, i.e. a sum below 2^28: rows of up
# to 511 values are always safe; longer ones can abort LiteRT itself.
MAX_DEPTH = 511


def softmax_scaling(beta: float, input_scale: float) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, diff_min) as LiteRT's Prepare computes them."""
    real = min(
        float(beta) * float(input_scale) * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)),
        float((1 << 31) - 1),
    )
    multiplier, left_shift = quantize_multiplier(real)
    radius = math.floor(
        float((1 << SCALED_DIFF_INTEGER_BITS) - 1)
        * float(1 << (31 - SCALED_DIFF_INTEGER_BITS))
        / float(1 << left_shift)
    )
    return multiplier, left_shift, -radius


def exp_table(multiplier: int, left_shift: int, diff_min: int) -> np.ndarray:
    """exp(beta * scale * (x - max)) in Q0 for max - x = 0..255; 0 where the reference
    skips the value (below diff_min), which sums and scales to exactly what skipping does."""
    table = np.zeros(256, dtype=np.int32)
    for d in range(256):
        diff = -d
        if diff < diff_min:
            continue
        scaled = srdhm(diff * (1 << left_shift), multiplier)
        table[d] = exp_on_negative_values(scaled, SCALED_DIFF_INTEGER_BITS)
    return table


def softmax_rows(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """int8 softmax of each row of x (rows, depth) given the exp table."""
    x = x.astype(np.int64)
    diff = x.max(axis=1, keepdims=True) - x
    exps = table.astype(np.int64)[diff]
    # Q0 exps rescaled to Q12 (a rounding shift by 12), summed per row
    sum_of_exps = rounding_divide_by_pot(exps, ACCUMULATION_INTEGER_BITS).sum(axis=1, keepdims=True)
    reciprocal, num_bits_over_unit = get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - 8
    out = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(reciprocal, exps), exponent)
    return np.clip(out - 128, -128, 127).astype(np.int8)


class Softmax(OpDef):
    kinds = ("SOFTMAX",)
    options = "SoftmaxOptions"
    kernel = "softmax"
    in_place = True  # the kernel reads a whole row before writing any of it

    def validate(self, g: Graph, op: Op) -> None:
        require_int8(g, op, [op.inputs[0], op.outputs[0]])
        x, y = g.tensor(op.inputs[0]), g.op_output(op)
        require_per_tensor(op, x)
        require_per_tensor(op, y)
        if y.zero_point != -128 or abs(y.scale - 1.0 / 256) > 0.001 / 256:
            raise fail(
                op,
                f"output '{y.name}' has scale {y.scale} and zero point {y.zero_point};"
                " int8 SOFTMAX needs 1/256 and -128",
            )
        if x.shape != y.shape or not x.shape:
            raise fail(op, f"input shape {x.shape} and output shape {y.shape} do not match")
        if x.shape[-1] > MAX_DEPTH:
            raise fail(op, f"rows of {x.shape[-1]} values; at most {MAX_DEPTH} are supported")
        beta = float(op.options.get("beta", 1.0))
        if not beta > 0:
            raise fail(op, f"beta={beta}: only a positive beta is supported")

    def prepare(self, g: Graph, op: Op) -> dict[str, Any]:
        x = g.tensor(op.inputs[0])
        # beta is a float32 in the model; LiteRT widens it and the scale to double
        beta = float(np.float32(op.options.get("beta", 1.0)))
        multiplier, left_shift, diff_min = softmax_scaling(beta, float(np.float32(x.scale)))
        depth = x.shape[-1]
        return {
            "rows": x.size // depth,
            "depth": depth,
            "input_multiplier": multiplier,
            "input_left_shift": left_shift,
            "diff_min": diff_min,
            "table": exp_table(multiplier, left_shift, diff_min),
        }

    def reference(self, g: Graph, op: Op, p: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
        rows = xs[0].reshape(p["rows"], p["depth"])
        return softmax_rows(rows, p["table"]).reshape(xs[0].shape)

    def emit(self, g: Graph, op: Op, p: dict[str, Any], name: str) -> Emitted:
        table = CArray(f"{name}_exp_table", p["table"])
        return Emitted(
            kernel="tsm_softmax",
            params_type="tsm_softmax_params_t",
            fields=[
                ("rows", str(p["rows"])),
                ("depth", str(p["depth"])),
                ("exp_table", table.name),
            ],
            arrays=[table],
            inputs=[op.inputs[0]],
        )

    def macs(self, g: Graph, op: Op) -> int:
        return g.tensor(op.inputs[0]).size
