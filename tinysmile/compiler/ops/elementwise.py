"""What ADD and MUL share: 4-D broadcasting and constant operands."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.clits import CArray, c_int
from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.base import OpDef, activation_of, dims, fail, require_int8
from tinysmile.compiler.quant import activation_range


def broadcast_fields(out_shape: tuple[int, ...], a: tuple[int, ...], b: tuple[int, ...]) -> str:
    """The C initializer of a tsm_broadcast_t for output shape and two input shapes."""
    od = dims(out_shape)

    def strides(shape: tuple[int, ...]) -> list[int]:
        d = dims(shape)
        st, acc = [0] * 4, 1
        for k in range(3, -1, -1):
            st[k] = 0 if d[k] == 1 and od[k] != 1 else acc
            acc *= d[k]
        return st

    def arr(v: list[int]) -> str:
        return "{ " + ", ".join(c_int(x) for x in v) + " }"

    return f"{{ {arr(od)}, {arr(strides(a))}, {arr(strides(b))} }}"


class Binary(OpDef):
    min_inputs = 2
    in_place = True  # output[i] is written after input1[i] is read

    def validate(self, g: Graph, op: Op) -> None:
        require_int8(g, op, [op.inputs[0], op.inputs[1], op.outputs[0]])
        a, b, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.op_output(op)
        if max(len(a.shape), len(b.shape), len(y.shape)) > 4:
            raise fail(op, "more than 4 dimensions")
        try:
            shape = np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise fail(op, f"shapes {list(a.shape)} and {list(b.shape)} do not broadcast") from None
        if tuple(shape) != tuple(y.shape):
            raise fail(op, f"output shape {list(y.shape)} is not the broadcast {list(shape)}")
        activation_of(op)
        for t in (a, b):
            if t.quant is not None and t.quant.per_channel:
                raise fail(op, f"tensor '{t.name}' is quantized per channel")

    def common(self, g: Graph, op: Op) -> dict[str, Any]:
        a, b, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.op_output(op)
        lo, hi = activation_range(activation_of(op), y.scale, y.zero_point)
        return {
            "input1_offset": -a.zero_point,
            "input2_offset": -b.zero_point,
            "output_offset": y.zero_point,
            "activation_min": lo,
            "activation_max": hi,
        }

    def operand_fields(self, g: Graph, op: Op, name: str) -> tuple[list, list, list[int]]:
        """Constant operands become arrays in the params; the rest are call arguments."""
        arrays, fields, inputs = [], [], []
        for k, t in enumerate(op.inputs[:2], start=1):
            tensor = g.tensor(t)
            if tensor.is_const:
                arr = CArray(f"{name}_input{k}", tensor.data.astype(np.int8))
                arrays.append(arr)
                fields.append((f"input{k}_const", arr.name))
                inputs.append(-1)
            else:
                fields.append((f"input{k}_const", "NULL"))
                inputs.append(t)
        a, b, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.op_output(op)
        fields.insert(0, ("shape", broadcast_fields(y.shape, a.shape, b.shape)))
        return arrays, fields, inputs

    def operands(self, xs: list[np.ndarray], p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        return (
            xs[0].astype(np.int64) + p["input1_offset"],
            xs[1].astype(np.int64) + p["input2_offset"],
        )

    def finish(self, y: np.ndarray, p: dict[str, Any]) -> np.ndarray:
        y = y + p["output_offset"]
        return np.clip(y, p["activation_min"], p["activation_max"]).astype(np.int8)
