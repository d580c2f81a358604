"""The face finder's network, its targets and its loss.

A centroid grid (FOMO-like, with box regression): the whole camera frame, area-resized to
80x60 grey, goes through three stride-2 convolutions and two depthwise-separable blocks to
a 10x8 grid of cells, 8 input pixels (32 frame pixels on a 320x240 camera) each. Per cell
the head gives four numbers: the face score (a logit), where the face's centre lies inside
the cell (x and y as fractions of the cell, times OFFSET_SCALE) and log2 of the face's side
over SIZE_BASE (times SIZE_SCALE). The box is the one of the best cell (decoded in integers, `tinysmile/finder/decode.py` and
`firmware/vision/tsm_finder.c`).

Why this shape: one forward pass and an argmax cost a fixed, small number of instructions
(no sliding window, no anchors, no NMS); a face of 60-220 camera pixels is 15-55 input
pixels, inside the last layer's 47-pixel receptive field; the regression puts the box
within a few camera pixels, which the smile model's tight framing needs (misframing was the
largest degradation in `evaluate --degrade`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

WIDTH, HEIGHT = 80, 60
STRIDE = 8  # finder-input pixels per grid cell
SIZE_BASE = 16.0  # finder-input pixels: a side of SIZE_BASE * 2**v for a size output v
SIZE_RANGE = (-1.0, 3.0)  # log2 sides the targets are clipped to: 8 .. 128 input pixels
WIDTHS = (8, 16, 24, 32, 32)  # conv1-3, then the two separable blocks
CHANNELS = 4  # score, centre x, centre y, log2 size
# The head is one 1x1 convolution, so its four channels share one int8 scale. The score is
# a logit (no sigmoid: its top end would saturate into ties, and the argmax must tell the
# face's cell from its neighbours); the centre and size are trained as these multiples so
# that they span about the logit's range: 1/8 of a cell and 1/4 of a log2 size step per
# unit, where one int8 step is about 0.1.
OFFSET_SCALE = 8.0
SIZE_SCALE = 4.0
OFFSET_RANGE = (-1.0, 2.0)  # the centre as seen from a cell of the 3x3 neighbourhood
LOGIT_BOUND = 12.0  # logits past +-this are pulled back (keeps the int8 range tight)
TARGET_CHANNELS = 6  # score, weight, centre x, centre y, log2 size, box weight


def grid_shape(height: int = HEIGHT, width: int = WIDTH) -> tuple[int, int]:
    """(rows, columns) of the grid: three 'same' stride-2 convolutions."""
    h, w = height, width
    for _ in range(3):
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    return h, w


def build_finder(height: int = HEIGHT, width: int = WIDTH, widths: tuple[int, ...] = WIDTHS) -> Any:
    """The Keras model: uint8-range float input (H, W, 1) -> (gh, gw, 4)."""
    import keras
    from keras import layers

    c1, c2, c3, s1, s2 = widths
    x = inp = keras.Input((height, width, 1), name="frame")

    def conv(x: Any, filters: int, name: str, stride: int = 2, kernel: int = 3) -> Any:
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", name=name)(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x)

    def separable(x: Any, filters: int, name: str) -> Any:
        x = layers.DepthwiseConv2D(3, padding="same", name=f"{name}_dw")(x)
        x = layers.BatchNormalization(name=f"{name}_dw_bn")(x)
        x = layers.ReLU(name=f"{name}_dw_relu")(x)
        return conv(x, filters, f"{name}_pw", stride=1, kernel=1)

    x = conv(x, c1, "conv1")
    x = conv(x, c2, "conv2")
    x = conv(x, c3, "conv3")
    x = separable(x, s1, "block1")
    x = separable(x, s2, "block2")
    out = layers.Conv2D(CHANNELS, 1, name="cells")(x)
    return keras.Model(inp, out, name="face_finder")


def encode_targets(
    boxes: list[tuple[float, float, float, float] | None],
    height: int = HEIGHT,
    width: int = WIDTH,
) -> np.ndarray:
    """Targets (N, gh, gw, 6) for face boxes (x, y, w, h) in finder-input pixels, or None.

    The cell holding the face's centre is the one positive; the other cells of its 3x3
    neighbourhood are left out of the score loss (a centre near a cell edge makes a
    neighbour's high score no mistake), every other cell is a negative. The box terms train
    on the whole neighbourhood, each cell's centre relative to itself (OFFSET_RANGE)."""
    gh, gw = grid_shape(height, width)
    t = np.zeros((len(boxes), gh, gw, TARGET_CHANNELS), dtype=np.float32)
    t[..., 1] = 1.0
    for i, box in enumerate(boxes):
        if box is None:
            continue
        x, y, w, h = box
        cx, cy = (x + w / 2) / STRIDE, (y + h / 2) / STRIDE
        gx, gy = math.floor(cx), math.floor(cy)
        if not (0 <= gx < gw and 0 <= gy < gh):
            continue  # centre outside the grid: no face to find
        side = max(w, h) / SIZE_BASE
        size = float(np.clip(np.log2(max(side, 1e-3)), *SIZE_RANGE)) * SIZE_SCALE
        for y in range(max(gy - 1, 0), min(gy + 2, gh)):
            for x in range(max(gx - 1, 0), min(gx + 2, gw)):
                # Every cell of the neighbourhood learns where the centre is from itself
                # (-1 to 2 cells): when a neighbour wins the argmax, its box is still right.
                t[i, y, x, 1] = 0.0
                t[i, y, x, 2] = (cx - x) * OFFSET_SCALE
                t[i, y, x, 3] = (cy - y) * OFFSET_SCALE
                t[i, y, x, 4] = size
                t[i, y, x, 5] = 1.0
        t[i, gy, gx, 0] = 1.0
        t[i, gy, gx, 1] = 1.0
    return t


def finder_loss(positive_weight: float = 20.0, box_weight: float = 1.0) -> Any:
    """Weighted binary cross-entropy on the score logit, a Huber loss on the box terms of the
    positive cell, and a pull on logits past LOGIT_BOUND. Positives are one cell in ~80:
    weighted up so that the score does not settle at "never a face"."""
    from keras import ops

    def loss(y_true: Any, y_pred: Any) -> Any:
        target, weight = y_true[..., 0], y_true[..., 1]
        logit = y_pred[..., 0]
        # log(sigmoid(z)) = -softplus(-z), log(1 - sigmoid(z)) = -softplus(z): stable.
        bce = target * ops.softplus(-logit) * positive_weight + (1.0 - target) * ops.softplus(logit)
        score_loss = ops.sum(bce * weight, axis=(1, 2))
        d = ops.abs(y_true[..., 2:5] - y_pred[..., 1:4])
        huber = ops.where(d < 1.0, 0.5 * d * d, d - 0.5)
        box_loss = ops.sum(ops.sum(huber, axis=-1) * y_true[..., 5], axis=(1, 2))
        bound = ops.sum(ops.square(ops.relu(ops.abs(logit) - LOGIT_BOUND)), axis=(1, 2))
        return score_loss + box_weight * box_loss + 0.01 * bound

    return loss


def macs(height: int = HEIGHT, width: int = WIDTH, widths: tuple[int, ...] = WIDTHS) -> int:
    """Multiply-accumulates of build_finder's network, from its shapes."""
    c1, c2, c3, s1, s2 = widths
    h, w = height, width
    total = 0
    cin = 1
    for cout in (c1, c2, c3):
        h, w = math.ceil(h / 2), math.ceil(w / 2)
        total += h * w * cout * 9 * cin
        cin = cout
    for cout in (s1, s2):
        total += h * w * cin * 9 + h * w * cin * cout
        cin = cout
    total += h * w * cin * CHANNELS
    return total
