"""Training frames for the face finder, made from labelled face data with no hand-drawn
boxes: whole camera-like frames (grey, the camera's size) and the Haar-style face box in
each, or none.

Three kinds of frame:
- a face crop (SMILEsmileD, FER2013: datasets that ship tight crops) pasted into a
  background with feathered edges, its noise and blur applied to the whole frame afterwards,
  so that no square edge or cleaner patch tells where the face is; its box is the Haar-style
  box the dataset's framing (`SOURCE_FRAMING`) puts around such a crop, so the framing rule
  on the finder's box gives back the crop the smile model trained on;
- a real photo (GENKI-4K) placed into the frame at a random scale and position, or
  letterboxed as `tinysmile frame` converts a photo; its box from BlazeFace, as a teacher;
- no face: backgrounds cut from those photos away from the face, synthetic rooms, and
  pasted patches of background (so that "pasted" does not mean "face").
Then the capture conditions: gain and gamma, backlight, blur, sensor noise, JPEG.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinysmile.data.preprocess import SOURCE_FRAMING

Box = tuple[float, float, float, float]

FRAME_W, FRAME_H = 320, 240
FACE_SIDE = (48, 220)  # Haar-style box side in frame pixels, drawn log-uniformly
CROP_FRAMING = SOURCE_FRAMING["smilesmiled"]


@dataclass
class Photo:
    """A real photo (grey) and the Haar-style box of its face, by the teacher."""

    image: np.ndarray
    box: tuple[int, int, int, int]


def crop_box(x: float, y: float, side: float, framing: tuple[float, float] = CROP_FRAMING) -> Box:
    """The Haar-style box whose framed square is the crop at (x, y, side)."""
    margin, shift = framing
    hs = side / (1.0 + 2.0 * margin)
    cx, cy = x + side / 2.0, y + side / 2.0 - shift * hs
    return (cx - hs / 2.0, cy - hs / 2.0, hs, hs)


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    import cv2

    w, h = max(1, int(w)), max(1, int(h))
    shrink = w < img.shape[1] or h < img.shape[0]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def synthetic_room(rng: np.random.Generator, w: int = FRAME_W, h: int = FRAME_H) -> np.ndarray:
    """Low-frequency shading, a few edges and flat shapes: a room, roughly."""
    import cv2

    gy, gx = int(rng.integers(2, 7)), int(rng.integers(2, 8))
    coarse = rng.uniform(20, 235, size=(gy, gx)).astype(np.float32)
    bg = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(0, 6))):
        x0, y0 = int(rng.integers(-w // 4, w)), int(rng.integers(-h // 4, h))
        x1, y1 = x0 + int(rng.integers(10, w)), y0 + int(rng.integers(10, h))
        shade = float(rng.uniform(10, 245))
        if rng.random() < 0.5:
            cv2.rectangle(bg, (x0, y0), (x1, y1), shade, -1)
        else:
            centre = ((x0 + x1) / 2, (y0 + y1) / 2)
            axes = (abs(x1 - x0), abs(y1 - y0))
            cv2.ellipse(bg, (centre, axes, float(rng.uniform(0, 180))), shade, -1)
    bg += rng.normal(0, rng.uniform(0, 12), size=(h, w)).astype(np.float32)
    return np.clip(bg, 0, 255).astype(np.uint8)


def photo_background(
    photo: Photo, rng: np.random.Generator, w: int = FRAME_W, h: int = FRAME_H
) -> np.ndarray:
    """A part of the photo away from its face, scaled to fill the frame."""
    img = photo.image
    ph, pw = img.shape
    bx, by, bw, bh = photo.box
    for _ in range(8):
        cw = int(rng.integers(max(8, pw // 5), max(9, pw // 2)))
        ch = max(6, int(cw * h / w))
        if ch >= ph:
            continue
        x0, y0 = int(rng.integers(0, pw - cw + 1)), int(rng.integers(0, ph - ch + 1))
        # Clear of the face's box grown by half its side (hair, chin, a cheek's edge).
        ix = max(0, min(x0 + cw, bx + bw * 1.5) - max(x0, bx - bw * 0.5))
        iy = max(0, min(y0 + ch, by + bh * 1.5) - max(y0, by - bh * 0.5))
        if ix * iy == 0:
            return _resize(img[y0 : y0 + ch, x0 : x0 + cw], w, h)
    return synthetic_room(rng, w, h)


def feather_mask(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Alpha in [0, 1]: 1 inside, a smooth ramp to 0 at the edges (rounded, sometimes)."""
    import cv2

    edge = float(rng.uniform(0.06, 0.2))
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    xx = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    if rng.random() < 0.5:
        d = np.minimum(np.minimum(xx, 1 - xx), np.minimum(yy, 1 - yy))
        a = np.clip(d / edge, 0, 1)
    else:
        r = np.sqrt(((xx - 0.5) / 0.5) ** 2 + ((yy - 0.5) / 0.5) ** 2)
        a = np.clip((1.0 - r) / edge, 0, 1)
    a = a * a * (3 - 2 * a)  # smoothstep
    k = int(max(3, (min(h, w) * edge) // 2 * 2 + 1))
    return cv2.GaussianBlur(a, (k, k), 0)


def paste(frame: np.ndarray, patch: np.ndarray, x: int, y: int, alpha: np.ndarray | None) -> None:
    """Blend `patch` into `frame` at (x, y) (may lie partly outside), in place."""
    ph, pw = patch.shape
    fh, fw = frame.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + pw, fw), min(y + ph, fh)
    if x1 <= x0 or y1 <= y0:
        return
    src = patch[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)
    dst = frame[y0:y1, x0:x1].astype(np.float32)
    a = 1.0 if alpha is None else alpha[y0 - y : y1 - y, x0 - x : x1 - x]
    frame[y0:y1, x0:x1] = np.clip(dst * (1 - a) + src * a, 0, 255).astype(np.uint8)


def capture_conditions(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gain, gamma, backlight, blur, sensor noise and JPEG, each drawn at random."""
    import cv2

    f = frame.astype(np.float32)
    if rng.random() < 0.8:
        gain, gamma = rng.uniform(0.5, 1.4), rng.uniform(0.6, 1.6)
        f = 255.0 * np.clip(f / 255.0, 0, 1) ** gamma * gain + rng.uniform(-30, 30)
    if rng.random() < 0.15:  # backlight: a bright gradient over the frame
        h, w = f.shape
        g = np.linspace(0, 1, w, dtype=np.float32)[None, :] * np.ones((h, 1), np.float32)
        f = f + rng.uniform(40, 120) * (g if rng.random() < 0.5 else 1 - g)
    if rng.random() < 0.5:
        s = float(rng.uniform(0.3, 2.5))
        f = cv2.GaussianBlur(f, (0, 0), s)
    if rng.random() < 0.7:
        f = f + rng.normal(0, rng.uniform(1, 12), size=f.shape).astype(np.float32)
    out = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.4:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 90))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out


def letterbox(
    gray: np.ndarray, w: int = FRAME_W, h: int = FRAME_H
) -> tuple[np.ndarray, float, int, int]:
    """The photo as `tinysmile frame` makes a camera frame of it (scaled to fit with the
    integer area resize, centred on black): frame, scale, x and y offset."""
    from tinysmile.data.pixels import letterbox as fit

    frame, (x0, y0, nw, _) = fit(gray, w, h)
    return frame, nw / gray.shape[1], x0, y0


def _background(photos: list[Photo], rng: np.random.Generator) -> np.ndarray:
    if photos and rng.random() < 0.6:
        return photo_background(photos[int(rng.integers(len(photos)))], rng)
    return synthetic_room(rng)


def crop_frame(
    crop: np.ndarray, photos: list[Photo], rng: np.random.Generator
) -> tuple[np.ndarray, Box]:
    frame = _background(photos, rng)
    hs = float(np.exp(rng.uniform(np.log(FACE_SIDE[0]), np.log(FACE_SIDE[1]))))
    side = max(8, round(hs * (1.0 + 2.0 * CROP_FRAMING[0])))
    # The face's centre anywhere in the frame, the face partly outside included.
    cx = float(rng.uniform(0.02, 0.98)) * FRAME_W
    cy = float(rng.uniform(0.02, 0.98)) * FRAME_H
    x, y = round(cx - side / 2), round(cy - side / 2)
    face = _resize(crop, side, side).astype(np.float32)
    face = np.clip(face * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        face = face[:, ::-1]
    _distractors(frame, photos, rng)
    # Mostly feathered in; a quarter with the crop's square edge, as pasted scenes and
    # cropped photos show it (empty frames hold square patches too, so an edge is no face).
    paste(frame, face, x, y, feather_mask(side, side, rng) if rng.random() < 0.75 else None)
    return frame, crop_box(x, y, side)


def photo_frame(
    photo: Photo, photos: list[Photo], rng: np.random.Generator
) -> tuple[np.ndarray, Box]:
    img, (bx, by, bw, bh) = photo.image, photo.box
    if rng.random() < 0.45:
        # As `tinysmile frame` converts a photo: letterboxed; here at 55-100 % of the
        # frame's size and anywhere in it.
        fit = float(rng.uniform(0.55, 1.0))
        w, h = max(8, round(FRAME_W * fit)), max(8, round(FRAME_H * fit))
        small, s, ix, iy = letterbox(img, w, h)
        frame = np.zeros((FRAME_H, FRAME_W), dtype=np.uint8)
        x0, y0 = int(rng.integers(0, FRAME_W - w + 1)), int(rng.integers(0, FRAME_H - h + 1))
        frame[y0 : y0 + h, x0 : x0 + w] = small
        return frame, (bx * s + x0 + ix, by * s + y0 + iy, bw * s, bh * s)
    target = float(np.exp(rng.uniform(np.log(FACE_SIDE[0]), np.log(FACE_SIDE[1]))))
    s = target / max(bw, bh)
    ph, pw = img.shape
    scaled = _resize(img, round(pw * s), round(ph * s))
    flip = rng.random() < 0.5
    if flip:
        scaled = scaled[:, ::-1]
        bx = pw - bx - bw
    fcx = float(rng.uniform(0.02, 0.98)) * FRAME_W
    fcy = float(rng.uniform(0.02, 0.98)) * FRAME_H
    x = round(fcx - (bx + bw / 2) * s)
    y = round(fcy - (by + bh / 2) * s)
    frame = _background(photos, rng)
    alpha = feather_mask(*scaled.shape, rng) if rng.random() < 0.7 else None
    paste(frame, scaled, x, y, alpha)
    return frame, (x + bx * s, y + by * s, bw * s, bh * s)


def _distractors(
    frame: np.ndarray, photos: list[Photo], rng: np.random.Generator, most: int = 2
) -> None:
    """Pasted patches that are not faces (background from another photo or a room), square
    edged or feathered, so that neither a patch nor its edge means "face"."""
    for _ in range(int(rng.integers(0, most + 1))):
        side = int(rng.integers(30, 200))
        patch = _resize(_background(photos, rng), side, side)
        x, y = int(rng.integers(-side // 2, FRAME_W)), int(rng.integers(-side // 2, FRAME_H))
        paste(frame, patch, x, y, feather_mask(side, side, rng) if rng.random() < 0.5 else None)


def empty_frame(
    crops: list[np.ndarray], photos: list[Photo], rng: np.random.Generator
) -> np.ndarray:
    frame = _background(photos, rng)
    _distractors(frame, photos, rng, most=3)
    return frame


def make_frame(
    crops: list[np.ndarray], photos: list[Photo], rng: np.random.Generator
) -> tuple[np.ndarray, Box | None]:
    """One training frame (grey, FRAME_H x FRAME_W) and its face box in frame pixels."""
    r = rng.random()
    box: Box | None
    if r < 0.15 or not (crops or photos):
        frame, box = empty_frame(crops, photos, rng), None
    elif (r < 0.55 and crops) or not photos:
        frame, box = crop_frame(crops[int(rng.integers(len(crops)))], photos, rng)
    else:
        frame, box = photo_frame(photos[int(rng.integers(len(photos)))], photos, rng)
    # A face whose centre left the frame keeps its box: nothing for the finder to find
    # (encode_targets makes no positive cell of it), and no frame without a face either
    # (detection_metrics counts it neither way).
    return capture_conditions(frame, rng), box
