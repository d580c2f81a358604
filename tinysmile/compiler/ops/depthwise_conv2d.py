"""DEPTHWISE_CONV_2D: int8, per-channel weights, depth multiplier >= 1."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.clits import CArray
from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.base import Emitted, OpDef, fail, int_fields, window_lead
from tinysmile.compiler.ops.conv2d import (
    SPATIAL_FIELDS,
    bias_of,
    channel_multipliers,
    finish,
    fits_int32,
    folded_bias,
    padded_windows,
    spatial_params,
    validate_spatial,
    validate_weights,
    weight_arrays,
)


class DepthwiseConv2D(OpDef):
    kinds = ("DEPTHWISE_CONV_2D",)
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

    @staticmethod
    def _per_channel(p: dict[str, Any]) -> np.ndarray:
        """[1, H, W, C] -> [C, H * W]: each channel's taps together, row by row."""
        return p["filter"][0].reshape(-1, p["output_c"]).T.copy()

    def variant(self, g: Graph, op: Op, p: dict[str, Any]) -> str:
        if (
            (p["filter_h"], p["filter_w"]) == (3, 3)
            and p["depth_multiplier"] == 1
            and fits_int32(folded_bias(p, self._per_channel(p)))
        ):
            return "3x3"
        return "generic"

    def inplace_lead(self, g: Graph, op: Op, p: dict[str, Any]) -> int | None:
        return window_lead(p, p["input_c"], p["output_c"])

    def emit(self, g: Graph, op: Op, p: dict[str, Any], name: str) -> Emitted:
        if p.get("variant") == "3x3":
            w = self._per_channel(p)
            arrays = [
                CArray(f"{name}_filter", w.astype(np.int8)),
                CArray(f"{name}_bias", folded_bias(p, w).astype(np.int32)),
                CArray(f"{name}_multiplier", p["mult"].astype(np.int32)),
                CArray(f"{name}_shift", p["shift"].astype(np.int32)),
            ]
            return Emitted(
                kernel="tsm_depthwise_conv2d_3x3",
                params_type="tsm_depthwise_conv2d_params_t",
                fields=int_fields(p, SPATIAL_FIELDS + ["depth_multiplier"])
                + [
                    ("filter", arrays[0].name),
                    ("bias", arrays[1].name),
                    ("output_multiplier", arrays[2].name),
                    ("output_shift", arrays[3].name),
                ],
                arrays=arrays,
                inputs=[op.inputs[0]],
            )
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
