"""Camera frames: any image as the board's camera would deliver it."""

from __future__ import annotations

import numpy as np

from tinysmile.boards import Board
from tinysmile.data.pixels import resize_area

# Without a camera in the board file: the emulated board's frame.
DEFAULT_FRAME = (320, 240)


def camera_size(board: Board) -> tuple[int, int]:
    """(width, height) of the board's camera frame."""
    cam = board.camera
    if cam:
        return int(cam["width"]), int(cam["height"])
    return DEFAULT_FRAME


def camera_frame(gray: np.ndarray, fw: int, fh: int) -> tuple[np.ndarray, float, int, int]:
    """A grey image as an fw x fh camera frame: unchanged when it has that size, else scaled
    to fit (the integer area resize) and centred on black (letterboxed). Returns the frame,
    the scale and the image's offset in it, to map boxes between the two."""
    h, w = gray.shape
    if (w, h) == (fw, fh):
        return gray, 1.0, 0, 0
    s = min(fw / w, fh / h)
    nw, nh = max(1, min(fw, round(w * s))), max(1, min(fh, round(h * s)))
    frame = np.zeros((fh, fw), dtype=np.uint8)
    x0, y0 = (fw - nw) // 2, (fh - nh) // 2
    frame[y0 : y0 + nh, x0 : x0 + nw] = resize_area(gray, nw, nh)
    return frame, s, x0, y0
