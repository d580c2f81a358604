"""What RELU, RELU6 and int8 QUANTIZE share: an elementwise requantization with a clamp."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.ir import Graph, Op, Tensor
from tinysmile.compiler.ops.base import Emitted, OpDef, int_fields, require_int8, require_per_tensor
from tinysmile.compiler.quant import quantize_multiplier, requantize

FIELDS = [
    "size",
    "input_zero_point",
    "output_zero_point",
    "output_multiplier",
    "output_shift",
    "activation_min",
    "activation_max",
]


def rescale_params(x: Tensor, y: Tensor, real: float, lo: int, hi: int) -> dict[str, Any]:
    """Params of y = clamp(y_zp + (x - x_zp) * real, lo, hi) for the tsm_rescale kernel."""
    mult, shift = quantize_multiplier(real)
    return {
        "size": x.size,
        "input_zero_point": x.zero_point,
        "output_zero_point": y.zero_point,
        "output_multiplier": mult,
        "output_shift": shift,
        "activation_min": lo,
        "activation_max": hi,
    }


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
