"""What RELU, RELU6 and int8 QUANTIZE share: an elementwise requantization with a clamp."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.base import Emitted, OpDef, int_fields, require_int8, require_per_tensor
from tinysmile.compiler.quant import requantize

FIELDS = [
    "size",
    "input_zero_point",
    "output_zero_point",
    "output_multiplier",
    "output_shift",
    "activation_min",
    "activation_max",
]


class Rescale(OpDef):
    kernel = "rescale"
    in_place = True

    def validate(self, g: Graph, op: Op) -> None:
        require_int8(g, op, [op.inputs[0], op.outputs[0]])
        require_per_tensor(op, g.tensor(op.inputs[0]))
        require_per_tensor(op, g.op_output(op))

    def reference(self, g: Graph, op: Op, p: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0].astype(np.int64) - p["input_zero_point"]
        y = p["output_zero_point"] + requantize(x, p["output_multiplier"], p["output_shift"])
        return np.clip(y, p["activation_min"], p["activation_max"]).astype(np.int8)

    def emit(self, g: Graph, op: Op, p: dict[str, Any], name: str) -> Emitted:
        return Emitted(
            "tsm_rescale", "tsm_rescale_params_t", int_fields(p, FIELDS), inputs=[op.inputs[0]]
        )
