"""MUL on int8 with broadcasting."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.base import Emitted, int_fields
from tinysmile.compiler.ops.elementwise import Binary
from tinysmile.compiler.quant import quantize_multiplier, requantize

FIELDS = [
    "input1_offset",
    "input2_offset",
    "output_multiplier",
    "output_shift",
    "output_offset",
    "activation_min",
    "activation_max",
]


class Mul(Binary):
    kinds = ("MUL",)
    options = "MulOptions"
    kernel = "mul"

    def prepare(self, g: Graph, op: Op) -> dict[str, Any]:
        a, b, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.op_output(op)
        p = self.common(g, op)
        real = float(np.float32(a.scale)) * float(np.float32(b.scale)) / float(np.float32(y.scale))
        p["output_multiplier"], p["output_shift"] = quantize_multiplier(real)
        return p

    def reference(self, g: Graph, op: Op, p: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
        a, b = self.operands(xs, p)
        return self.finish(requantize(a * b, p["output_multiplier"], p["output_shift"]), p)

    def emit(self, g: Graph, op: Op, p: dict[str, Any], name: str) -> Emitted:
        arrays, fields, inputs = self.operand_fields(g, op, name)
        return Emitted(
            "tsm_mul", "tsm_mul_params_t", fields + int_fields(p, FIELDS), arrays, inputs
        )

    def macs(self, g: Graph, op: Op) -> int:
        return g.op_output(op).size
