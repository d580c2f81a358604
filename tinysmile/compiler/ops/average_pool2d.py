"""AVERAGE_POOL_2D on int8 (input and output share quantization)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.pool import Pool2D


class AveragePool2D(Pool2D):
    kinds = ("AVERAGE_POOL_2D",)
    kernel = "average_pool2d"

    def variant(self, g: Graph, op: Op, p: dict[str, Any]) -> str:
        # x4 sums 4 channels as int16 lanes: a window of at most 256 taps stays in range;
        # past a multiple of 4 the last word overlaps the one before
        if p["channels"] >= 4 and p["filter_h"] * p["filter_w"] <= 256:
            return "x4"
        # 1-3 channels: the window walked once per pixel, its channels together
        return "narrow" if p["channels"] < 4 else "generic"

    def reference(self, g: Graph, op: Op, p: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0].astype(np.int64)
        out = np.zeros((p["batches"], p["output_h"], p["output_w"], p["channels"]), np.int64)
        for oy, ox, win in self.windows(x, p):
            count = win.shape[1] * win.shape[2]
            acc = win.sum(axis=(1, 2))
            if count:
                # integer division truncating toward zero after a half-count nudge
                num = np.where(acc > 0, acc + count // 2, acc - count // 2)
                acc = np.sign(num) * (np.abs(num) // count)
            out[:, oy, ox, :] = acc
        return np.clip(out, p["activation_min"], p["activation_max"]).astype(np.int8)
