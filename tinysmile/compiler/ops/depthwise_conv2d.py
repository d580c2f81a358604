"""DEPTHWISE_CONV_2D: int8, per-channel weights, depth multiplier >= 1."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.base import Emitted, OpDef, fail, int_fields
from tinysmile.compiler.ops.conv2d import (
    SPATIAL_FIELDS,
    accumulator_worst_case,
    bias_of,
    channel_multipliers,
    finish,
    padded_windows,
    spatial_params,
    validate_spatial,
    validate_weights,
    weight_arrays,
)


class DepthwiseConv2D(OpDef):
    kinds = ("DEPTHWISE_CONV_2D",)
    min_inputs = 2
    options = "DepthwiseConv2DOptions"
    options_required = True
    kernel = "depthwise_conv2d"

    def validate(self, g: Graph, op: Op) -> None:
        validate_weights(g, op, channel_axis=3)
        validate_spatial(op)
        x, w, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.op_output(op)
        if len(x.shape) != 4 or len(w.shape) != 4 or w.shape[0] != 1:
            raise fail(op, "DEPTHWISE_CONV_2D needs a 4-D input and a [1,H,W,C] filter")
        if y.shape[3] % x.shape[3] or w.shape[3] != y.shape[3]:
            raise fail(op, f"channels {x.shape[3]} -> {y.shape[3]} are not a depth multiple")

    def prepare(self, g: Graph, op: Op) -> dict[str, Any]:
        x, w, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.op_output(op)
        p = spatial_params(g, op, w.shape[1], w.shape[2])
        p["depth_multiplier"] = y.shape[3] // x.shape[3]
        p["filter"] = w.data
        p["bias"] = bias_of(g, op, y.shape[3])
        p["mult"], p["shift"] = channel_multipliers(g, op, y.shape[3])
        return p

    def reference(self, g: Graph, op: Op, p: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0].astype(np.int64) + p["input_offset"]
        win = padded_windows(x, p, fill=0)  # (N, OH, OW, KH, KW, C)
        win = np.repeat(win, p["depth_multiplier"], axis=5)  # channel ic*M+m reads ic
        acc = np.einsum("nhwijc,ijc->nhwc", win, p["filter"][0].astype(np.int64), optimize=True)
        return finish(acc + p["bias"], p)

    def emit(self, g: Graph, op: Op, p: dict[str, Any], name: str) -> Emitted:
        arrays, fields = weight_arrays(name, g, op, p)
        return Emitted(
            kernel="tsm_depthwise_conv2d",
            params_type="tsm_depthwise_conv2d_params_t",
            fields=int_fields(p, SPATIAL_FIELDS + ["depth_multiplier"]) + fields,
            arrays=arrays,
            inputs=[op.inputs[0]],
        )

    def macs(self, g: Graph, op: Op) -> int:
        w, y = g.tensor(op.inputs[1]), g.op_output(op)
        return int(np.prod(y.shape)) * w.shape[1] * w.shape[2]

    def accumulator_bound(self, g: Graph, op: Op) -> int:
        return accumulator_worst_case(g, op, channel_axis=3)
