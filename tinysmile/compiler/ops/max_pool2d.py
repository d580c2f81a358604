"""MAX_POOL_2D on int8."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops.pool import Pool2D


class MaxPool2D(Pool2D):
    kinds = ("MAX_POOL_2D",)
    kernel = "max_pool2d"

    def variant(self, g: Graph, op: Op, p: dict[str, Any]) -> str:
        # four channels per word; past a multiple of 4 the last word overlaps the one before
        # 1-3 channels: the window walked once per pixel, its channels together
        return "x4" if p["channels"] >= 4 else "narrow"

    def reference(self, g: Graph, op: Op, p: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0].astype(np.int32)
        out = np.full((p["batches"], p["output_h"], p["output_w"], p["channels"]), -128, np.int32)
        for oy, ox, win in self.windows(x, p):
            if win.size:
                out[:, oy, ox, :] = np.maximum(win.max(axis=(1, 2)), -128)
        return np.clip(out, p["activation_min"], p["activation_max"]).astype(np.int8)
