"""PAD on int8 (and PADV2 with a constant pad value)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.clits import c_int
from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.base import Emitted, OpDef, dims, fail, require_int8


def _arr(v: list[int]) -> str:
    return "{ " + ", ".join(c_int(x) for x in v) + " }"


class Pad(OpDef):
    kinds = ("PAD", "PADV2")
    min_inputs = 2
    kernel = "pad"

    def validate(self, g: Graph, op: Op) -> None:
        require_int8(g, op, [op.inputs[0], op.outputs[0]])
        x, pads, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.op_output(op)
        if not pads.is_const:
            raise fail(op, "paddings are not constant")
        if len(x.shape) > 4:
            raise fail(op, "more than 4 dimensions")
        if x.scale != y.scale or x.zero_point != y.zero_point:
            raise fail(op, "input and output quantization differ")
        if np.any(pads.data < 0):
            raise fail(op, "negative padding")
        if len(op.inputs) > 2 and op.inputs[2] >= 0 and not g.tensor(op.inputs[2]).is_const:
            raise fail(op, "the pad value is not constant")

    def prepare(self, g: Graph, op: Op) -> dict[str, Any]:
        x, y = g.tensor(op.inputs[0]), g.op_output(op)
        pads = g.tensor(op.inputs[1]).data.reshape(-1, 2).astype(np.int64)
        before = [0] * (4 - len(x.shape)) + pads[:, 0].tolist()
        value = y.zero_point
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            value = int(g.tensor(op.inputs[2]).data.reshape(-1)[0])
        return {
            "input_dims": dims(x.shape),
            "output_dims": dims(y.shape),
            "pad_before": before,
            "pads": pads,
            "pad_value": value,
        }

    def reference(self, g: Graph, op: Op, p: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
        return np.pad(xs[0], p["pads"], constant_values=p["pad_value"]).astype(np.int8)

    def emit(self, g: Graph, op: Op, p: dict[str, Any], name: str) -> Emitted:
        fields = [(k, _arr(p[k])) for k in ("input_dims", "output_dims", "pad_before")]
        fields.append(("pad_value", c_int(p["pad_value"])))
        return Emitted("tsm_pad", "tsm_pad_params_t", fields, inputs=[op.inputs[0]])
