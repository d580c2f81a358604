"""DEPTHWISE_CONV_2D: int8, per-channel weights, depth multiplier >= 1, dilation >= 1."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.clits import CArray
from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.base import Emitted, OpDef, fail, int_fields, window_lead
from tinysmile.compiler.ops.conv2d import (
    SPATIAL_FIELDS,
    accumulator_worst_case,
    bias_of,
    channel_multipliers,
    finish,
    fits_int32,
    folded_bias,
    padded_windows,
    spatial_params,
    tiled_emit,
    tiled_scratch_bytes,
    tiled_variant,
    validate_spatial,
    validate_weights,
    weight_arrays,
)

DW3X3_FIELDS = [
    "batches",
    "input_h",
    "input_w",
    "channels",
    "output_h",
    "output_w",
    "stride_h",
    "stride_w",
    "pad_h",
    "pad_w",
    "input_offset",
    "output_offset",
    "activation_min",
    "activation_max",
]

# the kxk kernel's: the 3x3 one's with the filter's size and dilation
DWKXK_FIELDS = [
    *DW3X3_FIELDS[:6],
    "filter_h",
    "filter_w",
    "dilation_h",
    "dilation_w",
    "depth_multiplier",
    *DW3X3_FIELDS[6:],
]


def dw_words(w: np.ndarray) -> np.ndarray:
    """[channels, taps] int8 -> the 3x3 and kxk kernels' filter_words (int32): per group of
    4 channels, for each tap the int16 pairs (w_c0, w_c2) and (w_c1, w_c3), what
    SMLABB/SMLATT take against SXTB16 of an input word. Channels past the last group of 4
    are not in it (the kernels' scalar loop reads the plain filter)."""
    groups, taps = w.shape[0] // 4, w.shape[1]
    if not groups:
        return np.zeros(1, dtype=np.int32)  # C has no empty arrays; the kernel reads none
    c = w[: 4 * groups].astype(np.int16).reshape(groups, 4, taps)
    # (group, tap, word, half): word 0 holds channels 0 and 2, word 1 channels 1 and 3
    pairs = c[:, [[0, 2], [1, 3]], :].transpose(0, 3, 1, 2)
    return np.ascontiguousarray(pairs).astype("<i2").reshape(-1).view("<i4").astype(np.int32)


def dw3x3_channel_params(p: dict[str, Any], bias: np.ndarray, bound_ok: bool) -> np.ndarray:
    """Per channel [bias, multiplier, add, e] (int64) for the 3x3 and kxk kernels: e >= 1 and
    add = 2^(e-1) + output_offset * 2^e where tsm_requantize_rs applies (a right shift
    1..22 and, layer-wide, an accumulator below 2^30) for all 4 channels of a group (or a
    channel past the last group); otherwise e = 0 and add is the signed shift for
    tsm_requantize_q31, the offset added apart."""
    shift = np.asarray(p["shift"], dtype=np.int64)
    e = -shift
    ok = (e >= 1) & (e <= 22) & bound_ok
    groups = ok.size // 4
    ok[: groups * 4] = np.repeat(ok[: groups * 4].reshape(groups, 4).all(axis=1), 4)
    e1 = np.where(ok, e, 1)
    add = np.where(ok, (np.int64(1) << (e1 - 1)) + np.int64(p["output_offset"]) * (1 << e1), shift)
    mult = np.asarray(p["mult"], dtype=np.int64)
    return np.stack([bias.astype(np.int64), mult, add, np.where(ok, e, 0)], axis=1)


def dwk_channel_params(rows: np.ndarray) -> np.ndarray:
    """dw3x3_channel_params rows -> the kxk kernel's channel_params (int64, flat): per group
    of 4 channels [bias0..3, then multiplier, add, e of each channel] (the biases load in
    two LDRDs, the rest in order), then [bias, multiplier, add, e] per channel past the last
    group."""
    groups = len(rows) // 4
    g = rows[: 4 * groups].reshape(groups, 4, 4)
    head = np.concatenate([g[:, :, 0], g[:, :, 1:].reshape(groups, 12)], axis=1)
    return np.concatenate([head.reshape(-1), rows[4 * groups :].reshape(-1)])


class DepthwiseConv2D(OpDef):
    kinds = ("DEPTHWISE_CONV_2D",)
    min_inputs = 2
    options = "DepthwiseConv2DOptions"
    options_required = True
    kernel = "depthwise_conv2d"

    def validate(self, g: Graph, op: Op) -> None:
        validate_weights(g, op, channel_axis=3)
        validate_spatial(op, dilation=True)
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

    @staticmethod
    def _as_conv(p: dict[str, Any]) -> dict[str, Any]:
        """The layer as the CONV_2D it is on one input channel: output channel m is filter m
        over that channel, [1, H, W, C] -> [C, H, W, 1]."""
        return {**p, "filter": p["filter"].transpose(3, 1, 2, 0)}

    def variant(self, g: Graph, op: Op, p: dict[str, Any]) -> str:
        dilated = (p["dilation_h"], p["dilation_w"]) != (1, 1)
        if p["input_c"] == 1 and not dilated:
            # one input channel, any multiplier: a plain convolution with output_c filters
            return tiled_variant(g, self._as_conv(p))
        if not fits_int32(folded_bias(p, self._per_channel(p))):
            return "generic"
        plain = p["depth_multiplier"] == 1 and not dilated
        return "3x3" if (p["filter_h"], p["filter_w"]) == (3, 3) and plain else "kxk"

    def scratch_bytes(self, g: Graph, op: Op, p: dict[str, Any]) -> int:
        if p.get("variant") in ("tiled", "tiled16"):
            return tiled_scratch_bytes(self._as_conv(p))
        if p.get("variant") in ("3x3", "kxk"):
            # a border pixel's window (kxk with a multiplier: every window), copied here
            # zero-point padded, each input channel once per output channel it feeds
            return p["filter_h"] * p["filter_w"] * p["output_c"]
        return 0

    def inplace_lead(self, g: Graph, op: Op, p: dict[str, Any]) -> int | None:
        return window_lead(p, p["input_c"], p["output_c"])

    def emit(self, g: Graph, op: Op, p: dict[str, Any], name: str) -> Emitted:
        if p.get("variant") in ("tiled", "tiled16"):
            return tiled_emit(self._as_conv(p), name, self.accumulator_bound(g, op), [op.inputs[0]])
        if p.get("variant") in ("3x3", "kxk"):
            w = self._per_channel(p)
            arrays = [
                CArray(f"{name}_filter_words", dw_words(w)),
                CArray(f"{name}_filter", w.astype(np.int8)),
            ]
            v = p["variant"]
            rows = dw3x3_channel_params(p, folded_bias(p, w), self.accumulator_bound(g, op) < 2**30)
            flat = rows.reshape(-1) if v == "3x3" else dwk_channel_params(rows)
            arrays.append(CArray(f"{name}_channel_params", flat.astype(np.int32)))
            q = {**p, "channels": p["output_c"]}
            return Emitted(
                kernel=f"tsm_depthwise_conv2d_{v}",
                params_type=f"tsm_depthwise_conv2d_{v}_params_t",
                fields=int_fields(q, DW3X3_FIELDS if v == "3x3" else DWKXK_FIELDS)
                + [
                    ("filter_words", f"(const uint32_t *){arrays[0].name}"),
                    ("filter", arrays[1].name),
                    ("channel_params", arrays[2].name),
                ],
                arrays=arrays,
                inputs=[op.inputs[0]],
                scratch="int8_t",
            )
        arrays, fields = weight_arrays(name, g, op, p)
        return Emitted(
            kernel="tsm_depthwise_conv2d",
            params_type="tsm_depthwise_conv2d_params_t",
            fields=int_fields(p, SPATIAL_FIELDS + ["depth_multiplier", "dilation_h", "dilation_w"])
            + fields,
            arrays=arrays,
            inputs=[op.inputs[0]],
        )

    def macs(self, g: Graph, op: Op) -> int:
        w, y = g.tensor(op.inputs[1]), g.op_output(op)
        return int(np.prod(y.shape)) * w.shape[1] * w.shape[2]

    def accumulator_bound(self, g: Graph, op: Op) -> int:
        return accumulator_worst_case(g, op, channel_axis=3)
