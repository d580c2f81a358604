"""CONV_2D: int8 input, int8 weights (per channel or per tensor), int32 bias."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.clits import CArray
from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.base import (
    Emitted,
    OpDef,
    activation_of,
    compute_padding,
    fail,
    int_fields,
    require_int8,
    require_positive,
    window_lead,
)
from tinysmile.compiler.quant import activation_range, quantize_multiplier_array, requantize


def channel_multipliers(g: Graph, op: Op, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel (multiplier, shift) from input * filter / output scales.

    TFLite forms the product in double from the float32 scales; so do we, so that the
    Q31 multipliers match to the bit.
    """
    x, w = g.tensor(op.inputs[0]), g.tensor(op.inputs[1])
    y = g.op_output(op)
    assert w.quant is not None
    scales = w.quant.scale.astype(np.float64)
    if scales.size == 1:
        scales = np.repeat(scales, channels)
    real = (np.float64(x.scale) * scales) / np.float64(y.scale)
    return quantize_multiplier_array(real)


def validate_weights(g: Graph, op: Op, channel_axis: int) -> None:
    require_int8(g, op, [op.inputs[0], op.outputs[0]])
    w = g.tensor(op.inputs[1])
    if not w.is_const:
        raise fail(op, f"weights '{w.name}' are not constant")
    if w.dtype != np.int8 or w.quant is None:
        raise fail(op, f"weights '{w.name}' are {w.dtype}, only int8 weights are supported")
    if np.any(w.quant.zero_point != 0):
        raise fail(op, f"weights '{w.name}' have a non-zero zero point (not symmetric int8)")
    if w.quant.per_channel and w.quant.axis != channel_axis:
        raise fail(op, f"weights '{w.name}' are quantized along axis {w.quant.axis}")
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = g.tensor(op.inputs[2])
        if b.dtype != np.int32 or not b.is_const:
            raise fail(op, f"bias '{b.name}' is {b.dtype}, an int32 constant is required")
        channels = g.op_output(op).shape[-1] if g.op_output(op).shape else 0
        if b.size != channels:
            raise fail(op, f"bias '{b.name}' has {b.size} values for {channels} output channels")


def bias_of(g: Graph, op: Op, channels: int) -> np.ndarray:
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        return g.tensor(op.inputs[2]).data.astype(np.int64).reshape(channels)
    return np.zeros(channels, dtype=np.int64)


def accumulator_worst_case(g: Graph, op: Op, channel_axis: int) -> int:
    """The largest |int32 accumulator| (bias + sum of (input - zero point) x weight) that any
    int8 input can produce, over output channels: each input at the extreme, 127 or -128,
    whose sign agrees with its weight. Exact whenever a window covers the whole filter, an
    upper bound otherwise, and never above taps x max|x - zp| x max|w| + max|b|. Every
    partial sum, in any order and with the zero point folded into the bias or not, is the
    accumulator of some int8 input, so it lies within the same bound."""
    x, w = g.tensor(op.inputs[0]), g.tensor(op.inputs[1])
    zp = x.zero_point
    up, down = 127 - zp, 128 + zp  # how far (input - zero point) reaches each way
    weights = w.data.astype(np.int64)
    axes = tuple(a for a in range(weights.ndim) if a != channel_axis)
    pos = np.where(weights > 0, weights, 0).sum(axis=axes)
    neg = np.where(weights < 0, -weights, 0).sum(axis=axes)
    bias = bias_of(g, op, pos.size)
    highest = pos * up + neg * down + bias
    lowest = -(pos * down + neg * up) + bias
    return int(np.maximum(np.abs(highest), np.abs(lowest)).max()) if pos.size else 0


def dilation_of(op: Op) -> tuple[int, int]:
    return tuple(int(op.options.get(k, 1) or 1) for k in ("dilation_h_factor", "dilation_w_factor"))


def validate_spatial(op: Op, dilation: bool = False) -> None:
    """dilation: whether the op's kernels take a dilation above 1 (DEPTHWISE_CONV_2D's)."""
    dh, dw = dilation_of(op)
    if dilation:
        require_positive(op, dilation_h_factor=dh, dilation_w_factor=dw)
    else:
        for key, value in (("dilation_h_factor", dh), ("dilation_w_factor", dw)):
            if value != 1:
                raise fail(op, f"{key}={value}: dilation > 1 is not supported")
    if op.options.get("padding") not in ("SAME", "VALID"):
        raise fail(op, f"padding {op.options.get('padding')} is not supported")
    require_positive(op, stride_h=op.options["stride_h"], stride_w=op.options["stride_w"])


def finish(acc: np.ndarray, p: dict[str, Any], channel_axis: int = -1) -> np.ndarray:
    """Requantize an int64 accumulator, add the output offset, clamp, cast."""
    y = requantize(acc, p["mult"], p["shift"]) + p["output_offset"]
    return np.clip(y, p["activation_min"], p["activation_max"]).astype(np.int8)


def padded_windows(x: np.ndarray, p: dict[str, Any], fill: int) -> np.ndarray:
    """(N, OH, OW, KH, KW, C) view of the input, padded with `fill` outside its bounds;
    with a dilation (p's dilation_h / dilation_w), tap k of a window is k * dilation from
    its first."""
    n, h, w, c = x.shape
    ph, pw = p["pad_h"], p["pad_w"]
    dh, dw = p.get("dilation_h", 1), p.get("dilation_w", 1)
    span_h, span_w = (p["filter_h"] - 1) * dh + 1, (p["filter_w"] - 1) * dw + 1
    need_h = (p["output_h"] - 1) * p["stride_h"] + span_h
    need_w = (p["output_w"] - 1) * p["stride_w"] + span_w
    padded = np.full((n, max(need_h, h + ph), max(need_w, w + pw), c), fill, dtype=np.int64)
    padded[:, ph : ph + h, pw : pw + w, :] = x
    win = np.lib.stride_tricks.sliding_window_view(padded, (span_h, span_w), (1, 2))
    win = win[
        :,
        : need_h - span_h + 1 : p["stride_h"],
        : need_w - span_w + 1 : p["stride_w"],
        :,
        ::dh,
        ::dw,
    ]
    # sliding_window_view puts the window axes last: (N, OH, OW, C, KH, KW)
    return win.transpose(0, 1, 2, 4, 5, 3)


def spatial_params(g: Graph, op: Op, filter_h: int, filter_w: int) -> dict[str, Any]:
    x, y = g.tensor(op.inputs[0]), g.op_output(op)
    _, ih, iw, ic = x.shape
    sh, sw = int(op.options["stride_h"]), int(op.options["stride_w"])
    dh, dw = dilation_of(op)
    oh, pad_h = compute_padding(op.options["padding"], ih, filter_h, sh, dh)
    ow, pad_w = compute_padding(op.options["padding"], iw, filter_w, sw, dw)
    if (oh, ow) != tuple(y.shape[1:3]):
        raise fail(op, f"output shape {y.shape} does not follow from the input and padding")
    lo, hi = activation_range(activation_of(op), y.scale, y.zero_point)
    return {
        "batches": x.shape[0],
        "input_h": ih,
        "input_w": iw,
        "input_c": ic,
        "output_h": oh,
        "output_w": ow,
        "output_c": y.shape[3],
        "filter_h": filter_h,
        "filter_w": filter_w,
        "stride_h": sh,
        "stride_w": sw,
        "dilation_h": dh,
        "dilation_w": dw,
        "pad_h": pad_h,
        "pad_w": pad_w,
        "input_offset": -x.zero_point,
        "output_offset": y.zero_point,
        "activation_min": lo,
        "activation_max": hi,
    }


SPATIAL_FIELDS = [
    "batches",
    "input_h",
    "input_w",
    "input_c",
    "output_h",
    "output_w",
    "output_c",
    "filter_h",
    "filter_w",
    "stride_h",
    "stride_w",
    "pad_h",
    "pad_w",
    "input_offset",
    "output_offset",
    "activation_min",
    "activation_max",
]


def weight_arrays(name: str, g: Graph, op: Op, p: dict[str, Any]) -> tuple[list, list]:
    """The filter, bias and multiplier arrays and their struct fields."""
    arrays = [
        CArray(f"{name}_filter", p["filter"].astype(np.int8)),
        CArray(f"{name}_bias", p["bias"].astype(np.int32)),
        CArray(f"{name}_multiplier", p["mult"].astype(np.int32)),
        CArray(f"{name}_shift", p["shift"].astype(np.int32)),
    ]
    fields = [
        ("filter", arrays[0].name),
        ("bias", arrays[1].name),
        ("output_multiplier", arrays[2].name),
        ("output_shift", arrays[3].name),
    ]
    return arrays, fields


def folded_bias(p: dict[str, Any], filter_2d: np.ndarray) -> np.ndarray:
    """bias + input_offset * sum(w) per output channel (int64): the input zero point's
    share of every window, added once here instead of once per tap on the device."""
    return p["bias"] + p["input_offset"] * filter_2d.astype(np.int64).sum(axis=1)


def rs_channel_params(p: dict[str, Any], bias: np.ndarray) -> np.ndarray | None:
    """Per output channel [bias, multiplier, 2^(e-1) + output_offset * 2^e, e] (int64) for
    tsm_requantize_rs (firmware/kernels/tsm_dsp.h), or None when a channel's shift is not a
    right shift e in 1..22, the range in which its folded sum cannot overflow. The caller
    also checks the accumulator stays below 2^30 (the doubling before SMMULR)."""
    e = -np.asarray(p["shift"], dtype=np.int64)
    if e.size == 0 or e.min() < 1 or e.max() > 22:
        return None
    add = (np.int64(1) << (e - 1)) + np.int64(p["output_offset"]) * (np.int64(1) << e)
    mult = np.asarray(p["mult"], dtype=np.int64)
    return np.stack([bias.astype(np.int64), mult, add, e], axis=1)


def rs_pair_words(rs: np.ndarray) -> np.ndarray:
    """rs_channel_params rows -> the tiled kernel's output_add (int32): per pair of output
    channels [bias0, bias1, multiplier0, multiplier1, add0, add1, e0, e1], an odd last
    channel repeated in the second place (its result is not stored)."""
    if len(rs) % 2:
        rs = np.concatenate([rs, rs[-1:]])
    pairs = rs.reshape(-1, 2, 4).transpose(0, 2, 1)  # (pair, field, channel)
    return pairs.reshape(-1).astype(np.int32)


def fits_int32(values: np.ndarray) -> bool:
    return bool(np.all((values >= -(2**31)) & (values < 2**31)))


def dsp_order(filter_2d: np.ndarray) -> np.ndarray:
    """[rows, depth] int8 -> [rows, depth rounded up to 4], zero-padded, each group of four
    taps stored w0 w2 w1 w3: SXTB16 of the word then yields (w0, w1) and, with ROR 8,
    (w2, w3), the order of the int16 columns the tiled kernels multiply them with."""
    rows, depth = filter_2d.shape
    padded = np.zeros((rows, -(-depth // 4) * 4), dtype=np.int8)
    padded[:, :depth] = filter_2d
    return padded.reshape(rows, -1, 4)[:, :, [0, 2, 1, 3]].reshape(rows, -1)


def tap_order(filter_h: int, row_len: int) -> np.ndarray:
    """The tiled kernel's column order of a window's taps (tsm_conv2d_gather_inside): each row's
    first row_len rounded down to 4 taps in row order, each 4 as x0 x2 x1 x3 (what SXTB16
    yields from a word), then every row's remainder, so that the device widens whole
    words of a row (a 5-wide single-channel row is 4 + 1 taps)."""
    row4 = row_len - row_len % 4
    head = np.array([ky * row_len + j for ky in range(filter_h) for j in range(row4)])
    head = head.reshape(-1, 4)[:, [0, 2, 1, 3]].reshape(-1)
    tail = [ky * row_len + j for ky in range(filter_h) for j in range(row4, row_len)]
    return np.concatenate([head, np.array(tail, dtype=np.int64)]).astype(np.int64)


def tiled_words(filter_2d: np.ndarray) -> np.ndarray:
    """The tiled kernel's filter as little-endian words: output channels in pairs (an
    odd last one paired with zeros), and within a pair, for each group of 4 taps, the
    first channel's word then the second's, so one LDRD fetches both."""
    rows = filter_2d.shape[0]
    w = dsp_order(filter_2d)
    if rows % 2:
        w = np.vstack([w, np.zeros((1, w.shape[1]), dtype=np.int8)])
    groups = w.reshape(-1, 2, w.shape[1] // 4, 4).transpose(0, 2, 1, 3)  # pair, group, ch, 4
    return np.ascontiguousarray(groups).reshape(-1).view("<i4").astype(np.int32)


def tiled_words16(filter_2d: np.ndarray) -> np.ndarray:
    """The tiled16 kernel's filter (int32 words of int16 pairs): output channels in pairs
    (an odd last one paired with zeros), and within a pair, for each group of 4 taps,
    [channel 0 taps 0-1, channel 1 taps 0-1, channel 0 taps 2-3, channel 1 taps 2-3], the
    pairs the int16 column words meet in SMLAD."""
    rows, depth = filter_2d.shape
    d4 = -(-depth // 4) * 4
    w = np.zeros((rows + rows % 2, d4), dtype=np.int16)
    w[:rows, :depth] = filter_2d
    groups = w.reshape(-1, 2, d4 // 4, 2, 2).transpose(0, 2, 3, 1, 4)  # pair, group, half, ch, tap
    return np.ascontiguousarray(groups).reshape(-1).astype("<i2").view("<i4").astype(np.int32)


# A model whose tiled layers' int8 filters total at most this many bytes gets every one of
# them as int16 pairs ("tiled16": twice their flash, no SXTB16 in the inner loop). Decided
# for the whole model, so that it links one of the two variants, never both.
WIDE_FILTER_BYTES = 16384


def conv_filter_bytes(g: Graph) -> int:
    """The int8 filter bytes of the layers the tiled kernel may take: every CONV_2D, and
    every DEPTHWISE_CONV_2D on one input channel (a convolution with output_c filters)."""
    return sum(
        g.tensor(op.inputs[1]).size
        for op in g.ops
        if op.kind == "CONV_2D"
        or (op.kind == "DEPTHWISE_CONV_2D" and g.tensor(op.inputs[0]).shape[-1] == 1)
    )


# The geometry is the generic kernel's (SPATIAL_FIELDS up to pad_w); the rest is the tile's.
TILED_FIELDS = [
    *SPATIAL_FIELDS[: SPATIAL_FIELDS.index("pad_w") + 1],
    "depth",
    "window_row",
    "input_zero_point",
    "output_offset",
    "activation_min",
    "activation_max",
]

# The tiled kernel's parameters, for any layer that is a convolution: p as spatial_params
# gives it, with p["filter"] laid out as CONV_2D's, [output_c, filter_h, filter_w, input_c].


def filter_2d(p: dict[str, Any]) -> np.ndarray:
    return p["filter"].reshape(p["filter"].shape[0], -1)


def tiled_variant(g: Graph, p: dict[str, Any]) -> str:
    """tiled16 in a model with few tiled filter bytes (WIDE_FILTER_BYTES), else tiled;
    generic when the folded bias would not fit the int32 it is stored in."""
    if not fits_int32(folded_bias(p, filter_2d(p))):
        return "generic"
    return "tiled16" if conv_filter_bytes(g) <= WIDE_FILTER_BYTES else "tiled"


def window_row(p: dict[str, Any]) -> int:
    """Bytes per window row as the tiled kernel gathers it: a single-channel row of 3
    (7, ...) taps is read as whole words, its last tap's weight zero (one wasted MAC
    in four, instead of a scalar gather of each tap); otherwise the row itself."""
    row = p["filter_w"] * p["input_c"]
    return row + 1 if p["input_c"] == 1 and row % 4 == 3 else row


def tiled_depth(p: dict[str, Any]) -> int:
    return -(-(p["filter_h"] * window_row(p)) // 4) * 4


def tiled_scratch_bytes(p: dict[str, Any]) -> int:
    """Two interleaved int16 columns, then one zero-point-padded border window."""
    window = p["filter_h"] * window_row(p)
    return tiled_depth(p) * 4 + -(-window // 4) * 4


def gathered_filter(p: dict[str, Any]) -> np.ndarray:
    """[output_c, filter_h * window_row]: each row zero-padded to the window row."""
    f = p["filter"].reshape(p["filter"].shape[0], p["filter_h"], -1)
    pad = window_row(p) - f.shape[2]
    return np.pad(f, ((0, 0), (0, 0), (0, pad))).reshape(f.shape[0], -1)


def tiled_emit(p: dict[str, Any], name: str, accumulator_bound: int, inputs: list[int]) -> Emitted:
    """The tiled (or tiled16, p["variant"]) kernel's call for a convolution-shaped layer."""
    w2d = filter_2d(p)
    ordered = gathered_filter(p)[:, tap_order(p["filter_h"], window_row(p))]
    words = tiled_words16 if p["variant"] == "tiled16" else tiled_words
    # int32 in C so that the kernel may fetch two words at once (LDRD)
    arrays = [CArray(f"{name}_filter", words(ordered))]
    # the shorter requantization (tsm_requantize_rs) where its conditions hold: its
    # per-channel words replace bias, multiplier and shift
    rs = rs_channel_params(p, folded_bias(p, w2d))
    if rs is not None and accumulator_bound < 2**30:
        arrays.append(CArray(f"{name}_pairs", rs_pair_words(rs)))
        out_fields = [
            ("bias", "NULL"),
            ("output_multiplier", "NULL"),
            ("output_shift", "NULL"),
            ("output_add", arrays[1].name),
        ]
    else:
        arrays += [
            CArray(f"{name}_bias", folded_bias(p, w2d).astype(np.int32)),
            CArray(f"{name}_multiplier", p["mult"].astype(np.int32)),
            CArray(f"{name}_shift", p["shift"].astype(np.int32)),
        ]
        out_fields = [
            ("bias", arrays[1].name),
            ("output_multiplier", arrays[2].name),
            ("output_shift", arrays[3].name),
            ("output_add", "NULL"),
        ]
    q = {
        **p,
        "depth": tiled_depth(p),
        "window_row": window_row(p),
        "input_zero_point": -p["input_offset"],
    }
    return Emitted(
        kernel="tsm_conv2d_tiled16" if p["variant"] == "tiled16" else "tsm_conv2d_tiled",
        params_type="tsm_conv2d_tiled_params_t",
        fields=int_fields(q, TILED_FIELDS)
        + [
            ("filter", f"(const uint32_t *){arrays[0].name}"),
            *out_fields,
        ],
        arrays=arrays,
        inputs=inputs,
        scratch="uint32_t",
        kernel_file="conv2d",
    )


class Conv2D(OpDef):
    kinds = ("CONV_2D",)
    min_inputs = 2
    options = "Conv2DOptions"
    options_required = True
    kernel = "conv2d"

    def validate(self, g: Graph, op: Op) -> None:
        validate_weights(g, op, channel_axis=0)
        validate_spatial(op)
        x, w = g.tensor(op.inputs[0]), g.tensor(op.inputs[1])
        if len(x.shape) != 4 or len(w.shape) != 4:
            raise fail(op, "CONV_2D needs 4-D input and filter")
        if w.shape[3] != x.shape[3]:
            raise fail(op, f"grouped convolution (filter depth {w.shape[3]}, input {x.shape[3]})")

    def prepare(self, g: Graph, op: Op) -> dict[str, Any]:
        w = g.tensor(op.inputs[1])
        p = spatial_params(g, op, w.shape[1], w.shape[2])
        p["filter"] = w.data
        p["bias"] = bias_of(g, op, w.shape[0])
        p["mult"], p["shift"] = channel_multipliers(g, op, w.shape[0])
        return p

    def reference(self, g: Graph, op: Op, p: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0].astype(np.int64) + p["input_offset"]
        win = padded_windows(x, p, fill=0)  # zero after the offset = the zero point before it
        acc = np.einsum("nhwijc,oijc->nhwo", win, p["filter"].astype(np.int64), optimize=True)
        return finish(acc + p["bias"], p)

    def variant(self, g: Graph, op: Op, p: dict[str, Any]) -> str:
        # Every shape goes tiled (single-channel first layers, 1x1 and 3x3 alike: gathering
        # the columns costs O(window) per pixel, the MACs O(window * output_c)).
        return tiled_variant(g, p)

    def scratch_bytes(self, g: Graph, op: Op, p: dict[str, Any]) -> int:
        return tiled_scratch_bytes(p) if p.get("variant") in ("tiled", "tiled16") else 0

    def inplace_lead(self, g: Graph, op: Op, p: dict[str, Any]) -> int | None:
        return window_lead(p, p["input_c"], p["output_c"])

    def emit(self, g: Graph, op: Op, p: dict[str, Any], name: str) -> Emitted:
        if p.get("variant") in ("tiled", "tiled16"):
            return tiled_emit(p, name, self.accumulator_bound(g, op), [op.inputs[0]])
        arrays, fields = weight_arrays(name, g, op, p)
        return Emitted(
            kernel="tsm_conv2d",
            params_type="tsm_conv2d_params_t",
            fields=int_fields(p, SPATIAL_FIELDS) + fields,
            arrays=arrays,
            inputs=[op.inputs[0]],
        )

    def macs(self, g: Graph, op: Op) -> int:
        w, y = g.tensor(op.inputs[1]), g.op_output(op)
        return int(np.prod(y.shape)) * w.shape[1] * w.shape[2] * w.shape[3]

    def accumulator_bound(self, g: Graph, op: Op) -> int:
        return accumulator_worst_case(g, op, channel_axis=0)
