"""Pi runtime benchmark: face detectors on camera-like frames. Prints tables; not a test.

    python bench/bench_pi.py [--frames 400] [--model BUNDLE] [--framing] [--json]

Frames are built by placing SMILEsmileD faces of the test split (by content hash, so the
default model never trained on them) into larger scenes (`tinysmile.pi.scenes`: 320x240,
face side 96..160 px, anywhere in the frame). For each detector: the share of faces found
(the framed crop overlaps the placed face with IoU >= 0.5), milliseconds per frame for
detection and for the whole step, and the AUC of the model's int8 score over all frames (a
frame without a face scores lowest: the bot says no smile). The reference row is the
model on the original crops.

`--framing` also measures the two framing constants: how SMILEsmileD's crops sit around a
Haar box (`SOURCE_FRAMING` in tinysmile/data/preprocess.py) and how BlazeFace's boxes map
onto Haar's (`BLAZEFACE_TO_HAAR_*` in tinysmile/pi/detect.py).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

SMILES = Path(__file__).resolve().parent.parent.parent / "shared/datasets/smilesmiled/SMILEs"


def test_faces(n: int) -> list[tuple[Path, int]]:
    from tinysmile.data.store import content_hash, split_for_hash

    out = []
    for folder, label in (("positives", 1), ("negatives", 0)):
        files = sorted((SMILES / folder).rglob("*.jpg"))
        picked = [f for f in files if split_for_hash(content_hash(f.read_bytes())) == "test"]
        out += [(f, label) for f in picked[: n // 2]]
    return out


def iou(a, b) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def framing(faces, scenes) -> dict:
    """Median placement of the original crop around the Haar box; BlazeFace vs Haar."""
    import cv2

    from tinysmile.data.preprocess import PreprocessSpec, detect_faces, load_image, to_gray
    from tinysmile.pi.detect import BlazeFaceDetector

    spec = PreprocessSpec(face_crop="haar")
    ratios, shifts = [], []
    for f, _ in faces[::2]:
        big = cv2.resize(to_gray(load_image(f)), (192, 192), interpolation=cv2.INTER_LINEAR)
        canvas = np.full((400, 400), 128, np.uint8)
        canvas[104:296, 104:296] = big
        b = detect_faces(spec, canvas)
        if b:
            _, y, w, h = b[0]
            ratios.append(192 / max(w, h))
            shifts.append((200 - (y + h / 2)) / h)
    raw = BlazeFaceDetector(scale=1.0, shift=0.0)
    bz_ratio, bz_shift = [], []
    for s in scenes:
        hb, bb = detect_faces(spec, s.image), raw.detect(s.image)
        if hb and bb and iou(hb[0], bb[0]) > 0.3:
            bz_ratio.append(hb[0][2] / bb[0][2])
            bz_shift.append(((hb[0][1] + hb[0][3] / 2) - (bb[0][1] + bb[0][3] / 2)) / bb[0][3])
    return {
        "smilesmiled_crops": {
            "measured": len(ratios),
            "crop_side_over_haar_side": float(np.median(ratios)),
            "crop_margin": round((float(np.median(ratios)) - 1) / 2, 3),
            "crop_shift_y": round(float(np.median(shifts)), 3),
        },
        "blazeface_to_haar": {
            "measured": len(bz_ratio),
            "scale": round(float(np.median(bz_ratio)), 3),
            "shift": round(float(np.median(bz_shift)), 3),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--model", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--framing", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from tinysmile.data.preprocess import load_image, preprocess, to_gray
    from tinysmile.pi.camera import Frame
    from tinysmile.pi.loop import Bot, load_pi_bundle
    from tinysmile.pi.scenes import make_scene
    from tinysmile.train.metrics import roc_auc

    bundle = load_pi_bundle(args.model)
    faces = test_faces(args.frames)
    rng = np.random.default_rng(args.seed)
    crops = [to_gray(load_image(f)) for f, _ in faces]
    scenes = [make_scene(c, rng) for c in crops]
    labels = np.array([y for _, y in faces])
    rows = []
    ref = Bot(bundle, detector="none")
    ref_scores = np.array(
        [int(ref.engine.run(ref.runner.quantize_input(preprocess(ref.spec, c)))[0]) for c in crops]
    )
    rows.append({"detector": "original crops", "found": 1.0, "auc": roc_auc(labels, ref_scores)})
    for det in ("haar", "blazeface"):
        bot = Bot(bundle, detector=det)
        scores, found, det_ms, step_ms = [], 0, [], []
        for s in scenes:
            t0 = time.perf_counter()
            r = bot.step(Frame("scene", s.image))
            step_ms.append((time.perf_counter() - t0) * 1e3)
            det_ms.append(r["ms"]["detect"])
            ok = r["face"] is not None and iou(r["crop"], s.face) >= 0.5
            found += ok
            # A missed (or wrong) face is the bot saying "no smile": the lowest score.
            scores.append(r["output_int8"] if ok else -129)
        rows.append(
            {
                "detector": det,
                "found": found / len(scenes),
                "detect_ms": float(np.median(det_ms)),
                "step_ms": float(np.median(step_ms)),
                "auc": roc_auc(labels, np.array(scores)),
            }
        )
    result = {"frames": len(scenes), "model": bundle.name, "rows": rows}
    if args.framing:
        result["framing"] = framing(faces, scenes)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    t = Table(title=f"Face detectors on {len(scenes)} SMILEsmileD test faces placed in scenes")
    for col in ("detector", "faces found", "detect ms/frame", "step ms/frame", "AUC"):
        t.add_column(col, justify="left" if col == "detector" else "right")
    for r in rows:
        t.add_row(
            r["detector"],
            f"{100 * r['found']:.1f} %",
            f"{r['detect_ms']:.1f}" if "detect_ms" in r else "-",
            f"{r['step_ms']:.1f}" if "step_ms" in r else "-",
            f"{r['auc']:.3f}",
        )
    Console().print(t)
    if args.framing:
        Console().print(result["framing"])


if __name__ == "__main__":
    main()
