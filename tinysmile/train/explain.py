"""What the smile model looks at: occlusion maps on the int8 model (`tinysmile explain`).

For a crop (the model's uint8 input), every patch x patch square at a stride is covered in
turn with the crop's own mean grey, and the int8 model (LiteRT's reference kernels, the
bytes the board computes) is run on each covered copy. A pixel's evidence is the mean, over
the squares that cover it, of how much the smile probability falls when they are covered:
positive where the face shows a smile, negative where it argues against one. It is the
model's own arithmetic, int8 included, with no gradient and no float twin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tinysmile.errors import TinysmileError


def occlusion_map(runner: Any, pixels: np.ndarray, patch: int = 8, stride: int = 4) -> np.ndarray:
    """Evidence per pixel (float32 H x W, in probability units) of one uint8 crop (H x W x
    1) for the positive output of a 1-output model."""
    outputs = int(np.prod(runner.output["shape"]))
    if outputs != 1:
        raise TinysmileError(
            f"explain: {runner.bundle.name} has {outputs} outputs; maps are made for a "
            "1-output (smile) model"
        )
    h, w = pixels.shape[:2]
    if patch < 1 or stride < 1 or patch > min(h, w):
        raise TinysmileError(
            f"explain: patch {patch} and stride {stride} must fit the {w}x{h} input"
        )
    base = float(runner.dequantize(runner.run_int8(runner.quantize_input(pixels))[0]))
    fill = np.uint8(round(float(pixels.mean())))
    total = np.zeros((h, w), np.float64)
    count = np.zeros((h, w), np.int64)
    ys = sorted({*range(0, h - patch + 1, stride), h - patch})  # the last row and column too
    xs = sorted({*range(0, w - patch + 1, stride), w - patch})
    for y in ys:
        for x in xs:
            covered = pixels.copy()
            covered[y : y + patch, x : x + patch] = fill
            q = runner.run_int8(runner.quantize_input(covered))[0]
            total[y : y + patch, x : x + patch] += base - float(runner.dequantize(q))
            count[y : y + patch, x : x + patch] += 1
    return (total / np.maximum(count, 1)).astype(np.float32)


def heat_image(pixels: np.ndarray, evidence: np.ndarray, scale: float, zoom: int = 6) -> np.ndarray:
    """The crop in grey with the evidence over it: red for a smile, blue against, as strong
    as |evidence| / scale (one scale for a whole set, so that maps compare); BGR uint8."""
    gray = np.repeat(pixels.reshape(pixels.shape[0], pixels.shape[1], 1), 3, axis=2)
    a = np.clip(evidence / max(scale, 1e-9), -1.0, 1.0)[..., None]
    red = np.array([40, 40, 230], np.float64)  # BGR
    blue = np.array([230, 120, 30], np.float64)
    colour = np.where(a > 0, red, blue)
    out = gray * (1 - 0.7 * np.abs(a)) + colour * 0.7 * np.abs(a)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return np.kron(out, np.ones((zoom, zoom, 1), np.uint8))


def explain_images(
    runner: Any,
    crops: list[tuple[str, np.ndarray]],
    out: Path,
    patch: int = 8,
    stride: int = 4,
    say: Any = lambda m: None,
) -> list[dict[str, Any]]:
    """Per (name, crop): NAME_crop.png, NAME_map.png and NAME_map.npy under out; returns
    each one's probability and evidence figures."""
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    maps = []
    for i, (name, pixels) in enumerate(crops, 1):
        maps.append(occlusion_map(runner, pixels, patch, stride))
        say(f"explain {i}/{len(crops)}: {name}")
    scale = max((float(np.abs(m).max()) for m in maps), default=0.0)
    results = []
    for (name, pixels), m in zip(crops, maps, strict=True):
        stem = Path(name).stem
        q = int(runner.run_int8(runner.quantize_input(pixels))[0])
        cv2.imwrite(str(out / f"{stem}_crop.png"), pixels[:, :, 0])
        cv2.imwrite(str(out / f"{stem}_map.png"), heat_image(pixels[:, :, 0], m, scale))
        np.save(out / f"{stem}_map.npy", m)
        results.append(
            {
                "image": name,
                "probability": float(runner.dequantize(q)),
                "output_int8": q,
                "smile": bool(q >= runner.threshold_int8),
                "evidence_max": float(m.max()),
                "evidence_min": float(m.min()),
                "map": str(out / f"{stem}_map.png"),
            }
        )
    return results


def class_means(
    runner: Any,
    crops: list[tuple[np.ndarray, int]],
    out: Path,
    patch: int = 8,
    stride: int = 4,
    say: Any = lambda m: None,
) -> dict[str, Any]:
    """Mean evidence map and mean crop per true class (labels 0, 1) of a store's crops:
    mean_<label>.png and .npy under out."""
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    sums: dict[int, np.ndarray] = {}
    faces: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    for i, (pixels, label) in enumerate(crops, 1):
        m = occlusion_map(runner, pixels, patch, stride).astype(np.float64)
        sums[label] = sums.get(label, 0) + m
        faces[label] = faces.get(label, 0) + pixels[:, :, 0].astype(np.float64)
        counts[label] = counts.get(label, 0) + 1
        if i % 20 == 0 or i == len(crops):
            say(f"explain --data: {i}/{len(crops)}")
    means = {k: sums[k] / counts[k] for k in sums}
    scale = max((float(np.abs(m).max()) for m in means.values()), default=0.0)
    result = {}
    for k, m in sorted(means.items()):
        label = runner.labels[k]
        face = np.clip(np.rint(faces[k] / counts[k]), 0, 255).astype(np.uint8)
        cv2.imwrite(str(out / f"mean_{label}.png"), heat_image(face, m, scale))
        np.save(out / f"mean_{label}.npy", m.astype(np.float32))
        result[label] = {"images": counts[k], "map": str(out / f"mean_{label}.png")}
    return result
