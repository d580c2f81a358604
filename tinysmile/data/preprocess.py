"""Preprocessing: the one code path from an image to the model's input, at training
and at serving time.

The spec is recorded in the model bundle (`PreprocessSpec.to_dict()`), and training,
quantization, the Pi runtime and verification all rebuild it with
`PreprocessSpec.from_dict()`; train and serve then cannot silently disagree.

Pipeline: image (grey, or BGR as OpenCV decodes it) -> grayscale -> square crop (the
largest Haar face plus a margin, or the centre) -> integer area resize to height x width
(`tinysmile.data.pixels`, the twin of the board's C) -> uint8 (H, W, 1). `to_float` maps
those pixels to what Keras trains on; `to_int8` is what the int8 model's input QUANTIZE
would make of that float, bit for bit.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from tinysmile.data.pixels import frame_square, framing_q16, resize_area
from tinysmile.errors import TinysmileError

FACE_CROPS = ("none", "haar", "blazeface-aligned")
# The aligned crop's Haar-style box from BlazeFace's eyes: side EYE_TO_HAAR_SIDE eye
# distances, centre EYE_TO_HAAR_DOWN eye distances below the eyes' midpoint, along the
# face's own down axis. Medians over 595 GENKI-4K train-split photos of BlazeFace's
# Haar-mapped box against its eyes (10-90 %: 2.37-2.75 for the side; the sideways offset
# was -0.011, taken as 0).
EYE_TO_HAAR_SIDE = 2.53
EYE_TO_HAAR_DOWN = 0.283
HAAR_CASCADE = "haarcascade_frontalface_default.xml"
# Detection runs on a copy no larger than this (long side): a 12 MP frame would take
# seconds otherwise, and faces a smile detector can use are never that small.
DETECT_MAX_SIDE = 640


@dataclass(frozen=True)
class PreprocessSpec:
    """How pixels become the model's input; defaults fit SMILEsmileD's 64x64 face crops."""

    height: int = 64
    width: int = 64
    channels: int = 1
    grayscale: bool = True
    face_crop: str = "none"  # "none": input already a face crop; "haar": detect one
    # Framing: the square around a Haar face box (x, y, w, h) has side max(w, h) * (1 + 2 *
    # crop_margin) and its centre crop_shift_y * h below the box's. With face_crop "haar"
    # this is how training cropped; with "none" it records how the dataset's own crops sit
    # around a Haar box (negative margin: tighter than the box), so that a face found in a
    # whole camera frame is cropped the way the training images were.
    crop_margin: float = 0.2
    crop_shift_y: float = 0.0
    haar_scale_factor: float = 1.1
    haar_min_neighbors: int = 5
    haar_min_size: float = 0.1  # smallest face, as a fraction of the image's shorter side
    # float = (pixel - pixel_mean) / pixel_std, computed in float32
    pixel_mean: float = 0.0
    pixel_std: float = 255.0

    def __post_init__(self) -> None:
        if self.channels != 1 or not self.grayscale:
            raise TinysmileError(
                f"preprocess spec: only 1-channel grayscale input is supported "
                f"(got channels={self.channels}, grayscale={self.grayscale})"
            )
        if self.height < 1 or self.width < 1:
            raise TinysmileError(f"preprocess spec: bad input size {self.height}x{self.width}")
        if self.face_crop not in FACE_CROPS:
            raise TinysmileError(
                f"preprocess spec: face_crop {self.face_crop!r} is not one of {FACE_CROPS}"
            )
        if not self.pixel_std or not np.isfinite(self.pixel_std):
            raise TinysmileError("preprocess spec: pixel_std must be non-zero and finite")
        if not self.crop_margin > -0.5:
            raise TinysmileError("preprocess spec: crop_margin must be > -0.5 (a crop of size > 0)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessSpec:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise TinysmileError(f"preprocess spec: unknown field(s) {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            kind = known[name].type
            try:
                if kind == "int":
                    if isinstance(value, bool) or int(value) != value:
                        raise ValueError
                    values[name] = int(value)
                elif kind == "float":
                    values[name] = float(value)
                elif kind == "bool":
                    if not isinstance(value, bool):
                        raise ValueError
                    values[name] = value
                else:
                    values[name] = str(value)
            except (TypeError, ValueError):
                raise TinysmileError(
                    f"preprocess spec: field {name} must be {kind}, got {value!r}"
                ) from None
        return cls(**values)

    def float_range(self) -> tuple[float, float]:
        """The float values pixels 0 and 255 map to (the input range quantization sees)."""
        lo, hi = to_float(self, np.array([0, 255], dtype=np.uint8))
        return float(min(lo, hi)), float(max(lo, hi))


# Importers whose images are whole scenes or loose portraits, where the face has to be
# found; SMILEsmileD and FER2013 ship tight face crops already.
NEEDS_FACE_DETECTION = frozenset({"genki4k", "celeba"})

# How the crops of datasets that ship face crops sit around a Haar face box, as
# (crop_margin, crop_shift_y): measured by `python bench/bench_pi.py --framing` (median over
# every 10th SMILEsmileD image, upscaled 3x into a grey 400x400 canvas, Haar found 893 of
# 1056: crop side 0.759 of the box's, centre 0.076 box heights below the box's).
SOURCE_FRAMING: dict[str, tuple[float, float]] = {"smilesmiled": (-0.12, 0.076)}
# Importers whose images are tight face crops already: a spec that finds faces (haar,
# blazeface-aligned) takes their images as they are, and crops only the photos of the
# same store (tinysmile.train.dataset.load_samples).
CROP_SOURCES = frozenset({"smilesmiled", "fer2013"})


def spec_for_sources(sources: Iterable[str], height: int = 64, width: int = 64) -> PreprocessSpec:
    """The spec to train with on data from these importers (face crop only when needed).

    Folder and votes imports are assumed to hold face crops; pass face_crop="haar" to
    PreprocessSpec yourself when they do not.
    """
    names = set(sources)
    face_crop = "haar" if NEEDS_FACE_DETECTION & names else "none"
    # Photos mixed with a dataset's crops are framed like those crops.
    framing = {SOURCE_FRAMING[n] for n in names if n in SOURCE_FRAMING}
    if len(framing) == 1:
        margin, shift = framing.pop()
        return PreprocessSpec(
            height=height, width=width, face_crop=face_crop, crop_margin=margin, crop_shift_y=shift
        )
    return PreprocessSpec(height=height, width=width, face_crop=face_crop)


@dataclass
class Preprocessed:
    pixels: np.ndarray  # uint8 (H, W, 1)
    crop: tuple[int, int, int, int]  # x, y, w, h of the square taken from the input
    face_found: bool  # False when face_crop == "haar" found no face (centre crop used)


def decode_image(data: bytes, what: str = "image") -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, ...) to uint8 grey (H, W) or BGR (H, W, 3)."""
    import cv2

    buf = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_ANYCOLOR) if buf.size else None
    if image is None or image.size == 0:
        raise TinysmileError(f"{what}: not a readable image")
    return image


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file to uint8 grey (H, W) or BGR (H, W, 3)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise TinysmileError(f"{p}: cannot read ({exc.strerror or exc})") from None
    return decode_image(data, str(p))


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 grey (H, W) from grey, (H, W, 1), BGR or BGRA uint8."""
    import cv2

    if image.dtype != np.uint8:
        raise TinysmileError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise TinysmileError(f"image has unsupported shape {image.shape}")


@functools.lru_cache(maxsize=1)
def _cascade() -> Any:
    import cv2

    path = Path(cv2.data.haarcascades) / HAAR_CASCADE
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise TinysmileError(f"{path}: OpenCV's Haar face cascade is missing or unreadable")
    return cascade


def detect_faces(spec: PreprocessSpec, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Haar frontal faces as (x, y, w, h) in `gray`'s coordinates, largest first."""
    import cv2

    h, w = gray.shape
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = gray
    if scale < 1.0:
        small = cv2.resize(
            gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    min_side = max(1, int(min(small.shape) * spec.haar_min_size))
    found = _cascade().detectMultiScale(
        small,
        scaleFactor=spec.haar_scale_factor,
        minNeighbors=spec.haar_min_neighbors,
        minSize=(min_side, min_side),
    )
    boxes = [tuple(round(v / scale) for v in box) for box in found]
    # Ties in area are broken by position so the choice never depends on detector order.
    boxes.sort(key=lambda b: (-b[2] * b[3], b[1], b[0]))
    return boxes  # type: ignore[return-value]


def _centre_square(h: int, w: int) -> tuple[int, int, int, int]:
    side = min(h, w)
    return (w - side) // 2, (h - side) // 2, side, side


def _face_square(
    box: tuple[int, int, int, int], margin: float, h: int, w: int, shift_y: float = 0.0
) -> tuple[int, int, int, int]:
    # The integer rule the board runs too (tsm_image_frame_square), so that Python and C
    # frame a face box identically; the host rounds the framing to Q16 once.
    x0, y0, side = frame_square(box, w, h, *framing_q16(margin, shift_y))
    return x0, y0, side, side


def framed_crop(
    spec: PreprocessSpec, box: tuple[int, int, int, int] | None, h: int, w: int
) -> tuple[int, int, int, int]:
    """The square taken from an h x w image around a face box (x, y, w, h): the box's longer
    side plus `crop_margin` on each side, so that a face found in a whole camera frame is
    framed like the training crops were; no box means the centre square."""
    if box is None:
        return _centre_square(h, w)
    return _face_square(box, spec.crop_margin, h, w, spec.crop_shift_y)


def crop_to_input(
    spec: PreprocessSpec, image: np.ndarray, box: tuple[int, int, int, int] | None
) -> Preprocessed:
    """Image + the face box a detector found in it (None: none) -> the model's uint8 input.

    The one crop-and-resize path: training (Haar boxes) and the Pi runtime (any detector)
    both come through here."""
    gray = to_gray(image)
    h, w = gray.shape
    crop = framed_crop(spec, box, h, w)
    x, y, cw, ch = crop
    square = gray[y : y + ch, x : x + cw]
    if (cw, ch) != (spec.width, spec.height):
        # The one integer area resize the board runs (tsm_image_resize_area), shrinking
        # and enlarging alike: OpenCV's float resizes differ between x86 and aarch64.
        square = resize_area(square, spec.width, spec.height)
    pixels = np.ascontiguousarray(square, dtype=np.uint8).reshape(spec.height, spec.width, 1)
    return Preprocessed(pixels=pixels, crop=crop, face_found=box is not None)


def aligned_crop(
    spec: PreprocessSpec, image: np.ndarray, eyes: tuple[tuple[float, float], tuple[float, float]]
) -> Preprocessed:
    """Detect -> align -> crop (`face_crop: blazeface-aligned`): the face turned so that its
    eyes are level and sized from their distance (EYE_TO_HAAR_*), then framed by the spec's
    rule (crop_margin, crop_shift_y along the face's own axes) and sampled into the model's
    input with the integer `rotated_square`. eyes: (the subject's right eye, left eye), as
    (x, y) in the image's pixels. `crop` is the turned square's upright bounds."""
    import math

    from tinysmile.data.pixels import rotated_square

    gray = to_gray(image)
    (rx, ry), (lx, ly) = eyes
    dist = math.hypot(lx - rx, ly - ry)
    if not dist > 0:
        raise TinysmileError("aligned crop: the two eyes are at one point")
    angle = math.atan2(ly - ry, lx - rx)
    down = (-math.sin(angle), math.cos(angle))  # the face's down axis in the image
    haar = EYE_TO_HAAR_SIDE * dist
    along = EYE_TO_HAAR_DOWN * dist + spec.crop_shift_y * haar
    cx = (rx + lx) / 2 + down[0] * along
    cy = (ry + ly) / 2 + down[1] * along
    side = haar * (1.0 + 2.0 * spec.crop_margin)
    pixels = rotated_square(gray, (cx, cy), side, angle, spec.width, spec.height)
    half = side * (abs(math.cos(angle)) + abs(math.sin(angle))) / 2
    crop = (round(cx - half), round(cy - half), round(2 * half), round(2 * half))
    return Preprocessed(
        pixels=pixels.reshape(spec.height, spec.width, 1), crop=crop, face_found=True
    )


_ALIGNER: list = []  # the one BlazeFace of this process for face_crop blazeface-aligned


def preprocess_detailed(spec: PreprocessSpec, image: np.ndarray) -> Preprocessed:
    """`preprocess`, also saying which square was used and whether a face was found."""
    box = None
    if spec.face_crop == "blazeface-aligned":
        if not _ALIGNER:
            from tinysmile.pi.detect import BlazeFaceDetector

            _ALIGNER.append(BlazeFaceDetector())
        found = _ALIGNER[0].detect_eyes(to_gray(image))
        if found:
            return aligned_crop(spec, image, found[0][1])
        pre = crop_to_input(spec, image, None)
        pre.face_found = False
        return pre
    if spec.face_crop == "haar":
        faces = detect_faces(spec, to_gray(image))
        box = faces[0] if faces else None
    return crop_to_input(spec, image, box)


def whole_image_crop(spec: PreprocessSpec, image: np.ndarray, detector: Any = None) -> Preprocessed:
    """The model's crop of a whole image: by the spec's own face_crop, or found by a
    detector (tinysmile.pi.detect: it first makes the image its frame, then crops the face
    it found its own way, the spec's framing rule or the aligned crop); no face found: the
    centre square (face_found False)."""
    if detector is None:
        return preprocess_detailed(spec, image)
    gray = detector.frame(to_gray(image))
    boxes = detector.detect(gray)
    if not boxes:
        pre = crop_to_input(spec, gray, None)
        pre.face_found = False
        return pre
    return detector.crop(spec, gray, tuple(int(v) for v in boxes[0]))


def preprocess(spec: PreprocessSpec, image: np.ndarray) -> np.ndarray:
    """Image (grey or BGR uint8) -> the model's uint8 input (H, W, 1).

    With face_crop "haar" and no face in sight this falls back to the centre square;
    call `preprocess_detailed` to learn whether that happened.
    """
    return preprocess_detailed(spec, image).pixels


def preprocess_file(spec: PreprocessSpec, path: str | Path) -> np.ndarray:
    return preprocess(spec, load_image(path))


def preprocess_files(spec: PreprocessSpec, paths: Sequence[str | Path]) -> np.ndarray:
    """uint8 (N, H, W, 1) for a list of image files (e.g. a store split's sample paths)."""
    out = np.empty((len(paths), spec.height, spec.width, 1), dtype=np.uint8)
    for i, path in enumerate(paths):
        out[i] = preprocess_file(spec, path)
    return out


def to_float(spec: PreprocessSpec, pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels (any shape) -> float32, as the float model is trained on."""
    p = np.asarray(pixels)
    if p.dtype != np.uint8:
        raise TinysmileError(f"to_float expects uint8 pixels, got {p.dtype}")
    return (p.astype(np.float32) - np.float32(spec.pixel_mean)) / np.float32(spec.pixel_std)


def round_half_away(x: np.ndarray) -> np.ndarray:
    """std::round semantics (what TfLiteRound uses), exact for float32 inputs.

    floor(|x| + 0.5) in float32 would round 0.49999997 up to 1; in float64 the sum of a
    float32 and 0.5 is exact, so the floor is right.
    """
    x64 = np.asarray(x, dtype=np.float64)
    return np.copysign(np.floor(np.abs(x64) + 0.5), x64)


def to_int8(spec: PreprocessSpec, pixels: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """uint8 pixels -> int8, exactly as TFLite's QUANTIZE would quantize `to_float`'s output.

    Reference kernel: q = clamp(zero_point + round(f / scale), -128, 127), with the
    division done in float32 and round half away from zero.
    """
    if not scale > 0:
        raise TinysmileError(f"to_int8: quantization scale must be > 0, got {scale}")
    f = to_float(spec, pixels)
    q = round_half_away(f / np.float32(scale)) + int(zero_point)
    return np.clip(q, -128, 127).astype(np.int8)
