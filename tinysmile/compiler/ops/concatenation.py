"""CONCATENATION on int8: TFLite requires one quantization for all inputs and the output,
so it is a copy (one kernel call per input)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.base import (
    Emitted,
    OpDef,
    activation_of,
    fail,
    int_fields,
    require_int8,
)


class Concatenation(OpDef):
    kinds = ("CONCATENATION",)
    options = "ConcatenationOptions"
    kernel = "concatenation"

    def validate(self, g: Graph, op: Op) -> None:
        require_int8(g, op, op.inputs + op.outputs)
        y = g.op_output(op)
        if activation_of(op) != "NONE":
            raise fail(op, "a fused activation on CONCATENATION is not supported")
        for t in op.inputs:
            x = g.tensor(t)
            if x.is_const:
                raise fail(op, f"constant input '{x.name}'")
            if x.scale != y.scale or x.zero_point != y.zero_point:
                raise fail(op, f"input '{x.name}' is quantized differently from the output")

    def prepare(self, g: Graph, op: Op) -> dict[str, Any]:
        y = g.op_output(op)
        axis = int(op.options.get("axis", 0)) % len(y.shape)
        outer = int(np.prod(y.shape[:axis], dtype=np.int64))
        out_chunk = int(np.prod(y.shape[axis:], dtype=np.int64))
        parts, offset = [], 0
        for t in op.inputs:
            chunk = int(np.prod(g.tensor(t).shape[axis:], dtype=np.int64))
            parts.append(
                {
                    "outer": outer,
                    "input_chunk": chunk,
                    "output_chunk": out_chunk,
                    "output_offset": offset,
                }
            )
            offset += chunk
        return {"axis": axis, "parts": parts}

    def reference(self, g: Graph, op: Op, p: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(xs, axis=p["axis"]).astype(np.int8)

    def emit(self, g: Graph, op: Op, p: dict[str, Any], name: str) -> Emitted:
        names = ["outer", "input_chunk", "output_chunk", "output_offset"]
        parts = [
            Emitted(
                "tsm_concatenation",
                "tsm_concatenation_params_t",
                int_fields(part, names),
                inputs=[t],
            )
            for part, t in zip(p["parts"], op.inputs)
        ]
        return Emitted("tsm_concatenation", "tsm_concatenation_params_t", parts=parts)
