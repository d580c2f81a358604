"""RELU and RELU6 on int8: a rescale to the output quantization clamped at 0 (and 6)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.rescale import Rescale, rescale_params
from tinysmile.compiler.quant import activation_range


class Relu(Rescale):
    kinds = ("RELU", "RELU6")

    def prepare(self, g: Graph, op: Op) -> dict[str, Any]:
        x, y = g.tensor(op.inputs[0]), g.op_output(op)
        # TFLite divides the two float32 scales in float32 here, then widens to double.
        real = float(np.float32(x.scale) / np.float32(y.scale))
        lo, hi = activation_range(op.kind, y.scale, y.zero_point)
        return rescale_params(x, y, real, lo, hi)
