"""RESHAPE and SQUEEZE: the same bytes seen with another shape. No code, no copy."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.base import OpDef, fail, require_int8


class Reshape(OpDef):
    kinds = ("RESHAPE", "SQUEEZE")
    alias = True

    def validate(self, g: Graph, op: Op) -> None:
        require_int8(g, op, [op.inputs[0], op.outputs[0]])
        x, y = g.tensor(op.inputs[0]), g.op_output(op)
        if x.size != y.size:
            raise fail(op, f"{list(x.shape)} -> {list(y.shape)} changes the element count")
        if x.scale != y.scale or x.zero_point != y.zero_point:
            raise fail(op, "input and output quantization differ")

    def reference(self, g: Graph, op: Op, p: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
        return xs[0].reshape(g.op_output(op).shape)

    def emit(self, g: Graph, op: Op, p: dict[str, Any], name: str) -> None:
        return None
