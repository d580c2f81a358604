"""On-the-fly augmentation of uint8 grey images (numpy + OpenCV, seeded numpy Generator).

Besides the usual geometric and photometric jitter, the serving-skew transforms imitate
what cheap camera modules on real devices deliver and a curated dataset does not: low
dynamic range, backlit subjects, crushed shadows, sensor noise and JPEG artefacts.

Every transform takes (image, rng, strength) and returns a new uint8 image of the same
shape; strength 0 leaves the image unchanged, 1 is the default amount.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tinysmile.errors import TinysmileError

Transform = Callable[[np.ndarray, np.random.Generator, float], np.ndarray]


def _as_2d(image: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    if image.dtype != np.uint8:
        raise TinysmileError(f"augment expects uint8 images, got {image.dtype}")
    shape = image.shape
    if image.ndim == 3 and shape[2] == 1:
        return image[:, :, 0], shape
    if image.ndim == 2:
        return image, shape
    raise TinysmileError(f"augment expects grey (H, W) or (H, W, 1) images, got {shape}")


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def blur(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    import cv2

    sigma = rng.uniform(0.0, 1.5 * strength)
    if sigma < 0.1:
        return image.copy()
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma)


def noise(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    sigma = rng.uniform(0.0, 8.0 * strength)
    return _to_u8(image.astype(np.float32) + rng.normal(0.0, sigma, image.shape))


def _warp(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    import cv2

    h, w = image.shape
    # Reflecting the border avoids black wedges the model could learn as a cue.
    return cv2.warpAffine(
        image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )


def shift(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    h, w = image.shape
    dx, dy = rng.uniform(-0.08, 0.08, size=2) * strength * np.array([w, h])
    return _warp(image, np.float32([[1, 0, dx], [0, 1, dy]]))


def rotation(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    import cv2

    h, w = image.shape
    angle = rng.uniform(-15.0, 15.0) * strength
    return _warp(image, cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0))


def brightness_contrast(
    image: np.ndarray, rng: np.random.Generator, strength: float = 1.0
) -> np.ndarray:
    alpha = 1.0 + rng.uniform(-0.3, 0.3) * strength
    beta = rng.uniform(-30.0, 30.0) * strength
    mean = float(image.mean())
    return _to_u8((image.astype(np.float32) - mean) * alpha + mean + beta)


def low_dynamic_range(
    image: np.ndarray, rng: np.random.Generator, strength: float = 1.0
) -> np.ndarray:
    # A washed-out sensor: the whole scene squeezed into a fraction of 0..255.
    width = 255.0 * (1.0 - rng.uniform(0.3, 0.6) * strength)
    low = rng.uniform(0.0, 255.0 - width)
    return _to_u8(low + image.astype(np.float32) * (width / 255.0))


def backlit(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    # Bright window behind the subject: the centre (the face) darkens, the rim blows out.
    h, w = image.shape
    cy = h / 2 + rng.uniform(-0.1, 0.1) * h
    cx = w / 2 + rng.uniform(-0.1, 0.1) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((yy - cy) / (h / 2)) ** 2 + ((xx - cx) / (w / 2)) ** 2)
    # 0 over the face, rising to 1 at the corners; face crops are tight, so the
    # glow only eats into the outer ring.
    rim = np.clip((r - 0.7) / 0.7, 0.0, 1.0)
    darken = 1.0 - rng.uniform(0.15, 0.4) * strength
    glow = rng.uniform(40.0, 110.0) * strength
    x = image.astype(np.float32)
    out = x * (darken + (1.0 - darken) * rim) + glow * rim
    return _to_u8(out)


def crushed_shadows(
    image: np.ndarray, rng: np.random.Generator, strength: float = 1.0
) -> np.ndarray:
    # Aggressive tone curve / black level: everything below the knee becomes 0.
    knee = rng.uniform(15.0, 50.0) * strength
    x = image.astype(np.float32)
    return _to_u8(np.maximum(x - knee, 0.0) * (255.0 / (255.0 - knee)))


def sensor_noise(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    # Shot noise grows with the signal (Poisson), read noise does not, and cheap
    # rolling-shutter sensors add a per-row offset (banding).
    x = image.astype(np.float32)
    gain = rng.uniform(0.1, 0.8) * strength
    shot = rng.normal(0.0, 1.0, x.shape) * np.sqrt(np.maximum(x, 0.0) * gain)
    read = rng.normal(0.0, rng.uniform(1.0, 4.0) * strength, x.shape)
    rows = rng.normal(0.0, rng.uniform(0.0, 3.0) * strength, (x.shape[0], 1))
    return _to_u8(x + shot + read + rows)


def jpeg(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    import cv2

    if strength <= 0:
        return image.copy()
    quality = round(95 - rng.uniform(35.0, 85.0) * min(strength, 1.0))
    quality = max(5, min(95, quality))
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise TinysmileError("augment: JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


# Applied in this order: geometry, then photometry, then the device's pipeline (sensor
# before compression, as in a camera).
TRANSFORMS: dict[str, Transform] = {
    "shift": shift,
    "rotation": rotation,
    "blur": blur,
    "brightness_contrast": brightness_contrast,
    "noise": noise,
    "low_dynamic_range": low_dynamic_range,
    "backlit": backlit,
    "crushed_shadows": crushed_shadows,
    "sensor_noise": sensor_noise,
    "jpeg": jpeg,
}
SERVING_SKEW = ("low_dynamic_range", "backlit", "crushed_shadows", "sensor_noise", "jpeg")
# What a device's captures suffer that clean dataset crops do not: the serving-skew set plus
# an out-of-focus lens and a face box a few pixels off (small misframing).
DEGRADATIONS = (*SERVING_SKEW, "blur", "shift")


def degrade(pixels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Each image of a batch (N, H, W[, 1]) through exactly one degradation, drawn in turn
    and seeded: the same seed gives the same images. Returns the images and which
    degradation each one got."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(pixels)
    names = []
    for i, image in enumerate(pixels):
        name = DEGRADATIONS[int(rng.integers(len(DEGRADATIONS)))]
        out[i] = apply(name, image, rng)
        names.append(name)
    return out, names


def apply(
    name: str, image: np.ndarray, rng: np.random.Generator, strength: float = 1.0
) -> np.ndarray:
    """One named transform; shape (H, W) or (H, W, 1) is kept."""
    fn = TRANSFORMS.get(name)
    if fn is None:
        raise TinysmileError(f"unknown augmentation {name!r}; known: {', '.join(TRANSFORMS)}")
    gray, shape = _as_2d(image)
    return fn(gray, rng, strength).reshape(shape)


def augment(
    image: np.ndarray,
    rng: np.random.Generator,
    strength: float = 1.0,
    *,
    transforms: Sequence[str] | None = None,
    p: float = 0.25,
) -> np.ndarray:
    """Each transform (all by default) applied with probability p, in TRANSFORMS order.

    With all ten at p = 0.25 an image gets 2.5 of them on average; more stacks up into
    pictures no camera would deliver.

    The same rng state gives the same result, so a seeded Generator makes epochs
    reproducible.
    """
    names = list(TRANSFORMS) if transforms is None else list(transforms)
    for name in names:
        if name not in TRANSFORMS:
            raise TinysmileError(f"unknown augmentation {name!r}; known: {', '.join(TRANSFORMS)}")
    gray, shape = _as_2d(image)
    out = gray.copy()
    for name, fn in TRANSFORMS.items():
        if name in names and strength > 0 and rng.random() < p:
            out = fn(out, rng, strength)
    return out.reshape(shape)
