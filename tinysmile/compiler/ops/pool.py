"""What MAX_POOL_2D and AVERAGE_POOL_2D share: window geometry and its clipping."""

from __future__ import annotations

from typing import Any

import numpy as np

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
from tinysmile.compiler.quant import activation_range

FIELDS = [
    "batches",
    "input_h",
    "input_w",
    "channels",
    "output_h",
    "output_w",
    "filter_h",
    "filter_w",
    "stride_h",
    "stride_w",
    "pad_h",
    "pad_w",
    "activation_min",
    "activation_max",
]


class Pool2D(OpDef):
    options = "Pool2DOptions"
    options_required = True

    def validate(self, g: Graph, op: Op) -> None:
        require_int8(g, op, [op.inputs[0], op.outputs[0]])
        x, y = g.tensor(op.inputs[0]), g.op_output(op)
        if len(x.shape) != 4:
            raise fail(op, "pooling needs a 4-D NHWC input")
        if x.scale != y.scale or x.zero_point != y.zero_point:
            raise fail(
                op, "input and output quantization differ (the int8 kernel does not rescale)"
            )
        if op.options.get("padding") not in ("SAME", "VALID"):
            raise fail(op, f"padding {op.options.get('padding')} is not supported")
        o = op.options
        require_positive(
            op,
            filter_height=o["filter_height"],
            filter_width=o["filter_width"],
            stride_h=o["stride_h"],
            stride_w=o["stride_w"],
        )
        activation_of(op)

    def prepare(self, g: Graph, op: Op) -> dict[str, Any]:
        x, y = g.tensor(op.inputs[0]), g.op_output(op)
        n, ih, iw, c = x.shape
        fh, fw = int(op.options["filter_height"]), int(op.options["filter_width"])
        sh, sw = int(op.options["stride_h"]), int(op.options["stride_w"])
        oh, pad_h = compute_padding(op.options["padding"], ih, fh, sh)
        ow, pad_w = compute_padding(op.options["padding"], iw, fw, sw)
        if (oh, ow) != tuple(y.shape[1:3]):
            raise fail(op, f"output shape {list(y.shape)} does not follow from the window")
        lo, hi = activation_range(activation_of(op), y.scale, y.zero_point)
        return {
            "batches": n,
            "input_h": ih,
            "input_w": iw,
            "channels": c,
            "output_h": oh,
            "output_w": ow,
            "filter_h": fh,
            "filter_w": fw,
            "stride_h": sh,
            "stride_w": sw,
            "pad_h": pad_h,
            "pad_w": pad_w,
            "activation_min": lo,
            "activation_max": hi,
        }

    def windows(self, x: np.ndarray, p: dict[str, Any]):
        """Yield (oy, ox, window) with each window clipped to the input: (N, h, w, C)."""
        for oy in range(p["output_h"]):
            y0 = oy * p["stride_h"] - p["pad_h"]
            ys, ye = max(0, y0), min(p["input_h"], y0 + p["filter_h"])
            for ox in range(p["output_w"]):
                x0 = ox * p["stride_w"] - p["pad_w"]
                xs, xe = max(0, x0), min(p["input_w"], x0 + p["filter_w"])
                yield oy, ox, x[:, ys:ye, xs:xe, :]

    def inplace_lead(self, g: Graph, op: Op, p: dict[str, Any]) -> int | None:
        return window_lead(p, p["channels"], p["channels"])

    def emit(self, g: Graph, op: Op, p: dict[str, Any], name: str) -> Emitted:
        suffix = "" if p.get("variant", "generic") == "generic" else "_" + p["variant"]
        return Emitted(
            kernel=f"tsm_{self.kernel}{suffix}",
            params_type="tsm_pool_params_t",
            fields=int_fields(p, FIELDS),
            inputs=[op.inputs[0]],
        )

    def macs(self, g: Graph, op: Op) -> int:
        return 0  # no multiplies; the report's MACs count multiply-accumulates only
