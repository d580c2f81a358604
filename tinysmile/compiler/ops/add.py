"""ADD on int8 with broadcasting (BatchNormalization after a pool becomes MUL + ADD)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.clits import CArray
from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.base import Emitted, int_fields
from tinysmile.compiler.ops.elementwise import Binary
from tinysmile.compiler.quant import quantize_multiplier, requantize

LEFT_SHIFT = 20  # TFLite's headroom for int8 addition
FIELDS = [
    "left_shift",
    "input1_offset",
    "input2_offset",
    "input1_multiplier",
    "input1_shift",
    "input2_multiplier",
    "input2_shift",
    "output_multiplier",
    "output_shift",
    "output_offset",
    "activation_min",
    "activation_max",
]


class Add(Binary):
    kinds = ("ADD",)
    options = "AddOptions"
    kernel = "add"

    def prepare(self, g: Graph, op: Op) -> dict[str, Any]:
        a, b, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.op_output(op)
        p = self.common(g, op)
        # Scales are float32 in the file; TFLite does this arithmetic in double.
        twice_max = 2.0 * max(float(np.float32(a.scale)), float(np.float32(b.scale)))
        p["left_shift"] = LEFT_SHIFT
        p["input1_multiplier"], p["input1_shift"] = quantize_multiplier(a.scale / twice_max)
        p["input2_multiplier"], p["input2_shift"] = quantize_multiplier(b.scale / twice_max)
        p["output_multiplier"], p["output_shift"] = quantize_multiplier(
            twice_max / ((1 << LEFT_SHIFT) * y.scale)
        )
        return p

    def reference(self, g: Graph, op: Op, p: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
        a, b = self.operands(xs, p)
        s1 = requantize(a << p["left_shift"], p["input1_multiplier"], p["input1_shift"])
        s2 = requantize(b << p["left_shift"], p["input2_multiplier"], p["input2_shift"])
        return self.finish(requantize(s1 + s2, p["output_multiplier"], p["output_shift"]), p)

    def variant(self, g: Graph, op: Op, p: dict[str, Any]) -> str:
        # every ADD: 2 KB of tables in flash buy two requantizations per element
        return "table"

    @staticmethod
    def _table(p: dict[str, Any], k: int) -> np.ndarray:
        codes = np.arange(-128, 128, dtype=np.int64) + p[f"input{k}_offset"]
        return requantize(codes << p["left_shift"], p[f"input{k}_multiplier"], p[f"input{k}_shift"])

    def emit(self, g: Graph, op: Op, p: dict[str, Any], name: str) -> Emitted:
        arrays, fields, inputs = self.operand_fields(g, op, name)
        if p.get("variant") == "table":
            tables = [
                CArray(f"{name}_table{k}", self._table(p, k).astype(np.int32)) for k in (1, 2)
            ]
            y = g.op_output(op).shape
            flat = all(tuple(g.tensor(t).shape) == tuple(y) for t in op.inputs[:2])
            fields = fields + [
                ("input1_table", tables[0].name),
                ("input2_table", tables[1].name),
                ("flat", "1" if flat else "0"),
            ]
            return Emitted(
                "tsm_add_table",
                "tsm_add_params_t",
                fields + int_fields(p, FIELDS),
                arrays + tables,
                inputs,
            )
        return Emitted(
            "tsm_add", "tsm_add_params_t", fields + int_fields(p, FIELDS), arrays, inputs
        )

    def macs(self, g: Graph, op: Op) -> int:
        return 0
