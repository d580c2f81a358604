"""Camera-like frames built from face crops: a crop scaled up and placed in a larger,
textured scene. Tests and `bench/bench_pi.py` use them where no camera is at hand."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Scene:
    image: np.ndarray  # uint8 grey (H, W)
    face: tuple[int, int, int, int]  # where the crop was placed: x, y, side, side


def make_scene(
    crop: np.ndarray,
    rng: np.random.Generator,
    size: tuple[int, int] = (320, 240),
    face_side: tuple[int, int] = (96, 160),
) -> Scene:
    """One grey frame (width, height = size) holding `crop` scaled to a random side."""
    import cv2

    w, h = size
    side = int(rng.integers(face_side[0], face_side[1] + 1))
    side = min(side, w, h)
    # A smooth random background (low-frequency noise plus a gradient), like a room.
    coarse = rng.integers(40, 220, size=(4, 5)).astype(np.float32)
    bg = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    bg += np.linspace(-20, 20, w, dtype=np.float32)[None, :]
    bg += rng.normal(0, 4, size=(h, w)).astype(np.float32)
    image = np.clip(bg, 0, 255).astype(np.uint8)
    face = cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC)
    x = int(rng.integers(0, w - side + 1))
    y = int(rng.integers(0, h - side + 1))
    image[y : y + side, x : x + side] = face
    return Scene(image=image, face=(x, y, side, side))
