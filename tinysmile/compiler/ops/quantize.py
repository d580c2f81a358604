"""QUANTIZE from int8 to int8 (a requantization). Float QUANTIZE/DEQUANTIZE at the model's
edges are stripped before validation (see program.strip_float_edges)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.base import fail
from tinysmile.compiler.ops.rescale import Rescale, rescale_params


class Quantize(Rescale):
    kinds = ("QUANTIZE",)

    def validate(self, g: Graph, op: Op) -> None:
        x = g.tensor(op.inputs[0])
        if x.dtype != np.int8:
            raise fail(
                op,
                f"QUANTIZE from {x.dtype} inside the model (only int8 -> int8, or"
                " float at the model's input edge)",
            )
        super().validate(g, op)

    def prepare(self, g: Graph, op: Op) -> dict[str, Any]:
        x, y = g.tensor(op.inputs[0]), g.op_output(op)
        # QUANTIZE's Prepare widens both scales to double before dividing.
        real = float(np.float32(x.scale)) / float(np.float32(y.scale))
        return rescale_params(x, y, real, -128, 127)
