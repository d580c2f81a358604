"""FULLY_CONNECTED: int8 input flattened to [batches, depth], int8 weights [out, depth]."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.clits import CArray
from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.base import Emitted, OpDef, activation_of, fail, int_fields
from tinysmile.compiler.ops.conv2d import (
    accumulator_worst_case,
    bias_of,
    channel_multipliers,
    fits_int32,
    folded_bias,
    validate_weights,
    weight_arrays,
)
from tinysmile.compiler.quant import activation_range, requantize_single

FIELDS = [
    "batches",
    "input_depth",
    "output_depth",
    "input_offset",
    "output_offset",
    "activation_min",
    "activation_max",
    "per_channel",
]

X4_FIELDS = [f for f in FIELDS if f != "input_offset"]


ROWS = 4  # the x4 kernel's block of output units


def interleave_rows(filter_2d: np.ndarray) -> np.ndarray:
    """The x4 kernel's weight order (tsm_fully_connected.h): output units in blocks of four,
    each block's words taken in turn (row 0's bytes 0-3, row 1's, row 2's, row 3's, then
    bytes 4-7 ...), the block's last depth % 4 columns row after row; then, when two or
    three units are left, the first two as a block of two the same way; the last unit as
    it is. One pointer then walks a block's rows."""
    out_depth, depth = filter_2d.shape
    d4 = depth - depth % 4
    parts = []
    o = 0
    for n in (ROWS, 2):
        while o + n <= out_depth:
            rows = filter_2d[o : o + n]
            words = rows[:, :d4].reshape(n, d4 // 4, 4).transpose(1, 0, 2)
            parts += [words.reshape(-1), rows[:, d4:].reshape(-1)]
            o += n
            if n == 2:
                break
    parts.append(filter_2d[o:].reshape(-1))
    return np.concatenate(parts).astype(np.int8)


class FullyConnected(OpDef):
    kinds = ("FULLY_CONNECTED",)
    min_inputs = 2
    options = "FullyConnectedOptions"
    kernel = "fully_connected"

    def validate(self, g: Graph, op: Op) -> None:
        validate_weights(g, op, channel_axis=0)
        x, w = g.tensor(op.inputs[0]), g.tensor(op.inputs[1])
        if op.options.get("weights_format", 0) not in (0, "DEFAULT"):
            raise fail(op, "shuffled weights format is not supported")
        if len(w.shape) != 2 or x.size % w.shape[1]:
            raise fail(op, f"weights {list(w.shape)} do not fit input {list(x.shape)}")
        _, shift = channel_multipliers(g, op, w.shape[0])
        if shift.max() > 30:
            raise fail(op, "an output multiplier above 2^30 (scales out of range)")

    def prepare(self, g: Graph, op: Op) -> dict[str, Any]:
        x, w, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.op_output(op)
        out_depth, depth = w.shape
        lo, hi = activation_range(activation_of(op), y.scale, y.zero_point)
        mult, shift = channel_multipliers(g, op, out_depth)
        per_channel = int(w.quant.per_channel)
        return {
            "batches": x.size // depth,
            "input_depth": depth,
            "output_depth": out_depth,
            "input_offset": -x.zero_point,
            "output_offset": y.zero_point,
            "activation_min": lo,
            "activation_max": hi,
            "per_channel": per_channel,
            "filter": w.data,
            "bias": bias_of(g, op, out_depth),
            "mult": mult if per_channel else mult[:1],
            "shift": shift if per_channel else shift[:1],
        }

    def reference(self, g: Graph, op: Op, p: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0].astype(np.int64).reshape(p["batches"], p["input_depth"]) + p["input_offset"]
        acc = x @ p["filter"].astype(np.int64).T + p["bias"]
        y = requantize_single(acc, p["mult"], p["shift"]) + p["output_offset"]
        return np.clip(y, p["activation_min"], p["activation_max"]).astype(np.int8)

    def variant(self, g: Graph, op: Op, p: dict[str, Any]) -> str:
        # four inputs a word against four rows of weights, unless the folded bias would
        # not fit the int32 it is stored in
        return "x4" if fits_int32(folded_bias(p, p["filter"])) else "generic"

    def emit(self, g: Graph, op: Op, p: dict[str, Any], name: str) -> Emitted:
        arrays, fields = weight_arrays(name, g, op, p)
        x4 = p.get("variant") == "x4"
        if x4:  # the bias with the input zero point folded in, the rows interleaved
            arrays[0] = CArray(f"{name}_filter", interleave_rows(p["filter"]))
            arrays[1] = CArray(f"{name}_bias", folded_bias(p, p["filter"]).astype(np.int32))
        return Emitted(
            kernel="tsm_fully_connected_x4" if x4 else "tsm_fully_connected",
            params_type=f"tsm_fully_connected{'_x4' if x4 else ''}_params_t",
            fields=int_fields(p, X4_FIELDS if x4 else FIELDS) + fields,
            arrays=arrays,
            inputs=[op.inputs[0]],
        )

    def macs(self, g: Graph, op: Op) -> int:
        x, w = g.tensor(op.inputs[0]), g.tensor(op.inputs[1])
        return (x.size // w.shape[1]) * w.shape[0] * w.shape[1]

    def accumulator_bound(self, g: Graph, op: Op) -> int:
        return accumulator_worst_case(g, op, channel_axis=0)
