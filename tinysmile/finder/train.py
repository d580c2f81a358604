"""`tinysmile detector train`: the face finder trained on frames made from the stores'
faces (tinysmile/finder/scenes.py), quantized to full int8 and written as a bundle.

Only the stores' train split makes training frames and only their val split makes the
frames that pick the score threshold, so the finder never sees a face the smile model is
tested on (the split is the store's hash rule)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tinysmile.data.preprocess import NEEDS_FACE_DETECTION, load_image, to_float, to_gray
from tinysmile.data.store import Store
from tinysmile.errors import TinysmileError
from tinysmile.finder import scenes
from tinysmile.finder.model import HEIGHT, WIDTH, build_finder, encode_targets, finder_loss, macs

TEACHER_FILE = "teacher_boxes.json"


def frame_to_input(frame: np.ndarray, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A camera frame as the finder sees it: the integer area resize every platform runs."""
    from tinysmile.data.pixels import resize_area

    h, w = frame.shape
    if h % height == 0 and w % width == 0:
        # Whole blocks (320x240 -> 80x60): the same integers as resize_area, much faster.
        ky, kx = h // height, w // width
        s = frame.reshape(height, ky, width, kx).sum(axis=(1, 3), dtype=np.int64)
        return ((s + ky * kx // 2) // (ky * kx)).astype(np.uint8)
    return resize_area(frame, width, height)


def load_faces(
    stores: list[str | Path], split: str, say: Callable[[str], None], teacher_cache: Path | None
) -> tuple[list[np.ndarray], list[scenes.Photo], dict[str, int]]:
    """Face crops and photos (with teacher boxes) of one split of the stores."""
    crops: list[np.ndarray] = []
    photos: list[scenes.Photo] = []
    counts: dict[str, int] = {}
    cache: dict[str, Any] = {}
    if teacher_cache is not None and teacher_cache.is_file():
        cache = json.loads(teacher_cache.read_text())
    detector = None
    ids: list[str] = []
    for root in stores:
        with Store(root, create=False) as store:
            samples = store.samples(split=split)
        for s in samples:
            ids.append(s.id)
            gray = to_gray(load_image(s.path))
            if s.source in NEEDS_FACE_DETECTION:
                if s.id not in cache:
                    if detector is None:
                        from tinysmile.pi.detect import BlazeFaceDetector

                        detector = BlazeFaceDetector()
                    found = detector.detect(gray)
                    cache[s.id] = list(found[0]) if found else None
                box = cache[s.id]
                if box is None:
                    counts["photos without a face"] = counts.get("photos without a face", 0) + 1
                    continue
                photos.append(scenes.Photo(gray, tuple(int(v) for v in box)))  # type: ignore[arg-type]
                key = f"{s.source} photos"
            else:
                crops.append(gray)
                key = f"{s.source} crops"
            counts[key] = counts.get(key, 0) + 1
    if teacher_cache is not None and cache:
        teacher_cache.write_text(json.dumps(cache, sort_keys=True))
    say(f"{split}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    # The data named by content, not by where it lay: one hash over the samples' hashes.
    counts["content_sha256"] = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()  # type: ignore[assignment]
    return crops, photos, counts


def load_captures(
    logs: list[str | Path], split: str, say: Callable[[str], None] = lambda m: None
) -> tuple[list[scenes.Photo], dict[str, Any]]:
    """Whole frames of the Pi's capture logs (`pi run --log`) with the box the Pi's detector
    found in each, as photos; split by the store's hash rule on the frame's bytes. Entries
    without a frame (`--log-frame-side 0`), without a face, or decided on the centre square
    (`--detector none`: its box is no face's) are left out."""
    import cv2

    from tinysmile.data.store import content_hash, split_for_hash
    from tinysmile.pi.capturelog import FRAME_FILE, entry_folders, read_entry

    photos: list[scenes.Photo] = []
    ids: list[str] = []
    left_out = 0
    for log in logs:
        if not Path(log).is_dir():
            raise TinysmileError(f"--captures {log}: not a capture log folder")
        for entry in entry_folders(Path(log)):
            try:
                meta = read_entry(entry)
            except TinysmileError:
                left_out += 1
                continue
            frame = entry / FRAME_FILE
            face = meta.get("face")
            if not frame.is_file() or face is None or meta.get("detector") == "none":
                left_out += 1
                continue
            data = frame.read_bytes()
            digest = content_hash(data)
            if split_for_hash(digest) != split:
                continue
            gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
            if gray is None:
                left_out += 1
                continue
            # The box is in the frame's pixels; frame.jpg may be that frame scaled down.
            scale = float(meta.get("frame_scale", 1.0))
            box = tuple(round(float(v) * scale) for v in face)
            photos.append(scenes.Photo(gray, box))  # type: ignore[arg-type]
            ids.append(digest)
    counts: dict[str, Any] = {}
    if logs:
        counts = {"capture frames": len(photos), "capture entries left out": left_out}
        counts["captures_sha256"] = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
        say(f"{split}: {len(photos)} capture frames ({left_out} entries left out)")
    return photos, counts


CHUNK = 1000  # frames per seeded chunk: the same frames whatever the number of workers
_POOL_FACES: tuple[list[np.ndarray], list[scenes.Photo]] = ([], [])


def _make_chunk(job: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    seed, index, count = job
    crops, photos = _POOL_FACES
    rng = np.random.default_rng([seed, index])
    x = np.empty((count, HEIGHT, WIDTH), dtype=np.uint8)
    boxes = np.full((count, 4), np.nan)
    for i in range(count):
        frame, box = scenes.make_frame(crops, photos, rng)
        x[i] = frame_to_input(frame)
        if box is not None:
            boxes[i] = box
    return x, boxes


def make_frames(
    crops: list[np.ndarray],
    photos: list[scenes.Photo],
    count: int,
    seed: int,
    say: Callable[[str], None] = lambda m: None,
    workers: int | None = None,
) -> tuple[np.ndarray, list[tuple[float, float, float, float] | None], np.ndarray]:
    """`count` frames at the finder's input size, their boxes there, and the full frames'
    boxes (NaN: none) in frame pixels. Made in seeded chunks, in parallel processes."""
    import multiprocessing
    import os

    global _POOL_FACES
    _POOL_FACES = (crops, photos)
    jobs = [(seed, i, min(CHUNK, count - i * CHUNK)) for i in range((count + CHUNK - 1) // CHUNK)]
    workers = workers or min(len(os.sched_getaffinity(0)), len(jobs))
    parts = []
    if workers > 1 and len(jobs) > 1:
        # fork: the workers share the faces with this process instead of pickling them.
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for n, part in enumerate(pool.imap(_make_chunk, jobs), 1):
                parts.append(part)
                say(f"frames {min(n * CHUNK, count)}/{count}")
    else:
        parts = [_make_chunk(j) for j in jobs]
    x = np.concatenate([p[0] for p in parts])[..., None]
    frame_boxes = np.concatenate([p[1] for p in parts])
    sx, sy = WIDTH / scenes.FRAME_W, HEIGHT / scenes.FRAME_H
    boxes: list[tuple[float, float, float, float] | None] = [
        None if np.isnan(b[0]) else (b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy)
        for b in frame_boxes
    ]
    return x, boxes, frame_boxes


def train_finder(
    stores: list[str | Path],
    out: str | Path,
    *,
    captures: list[str | Path] | None = None,
    frames: int = 36000,
    val_frames: int = 2000,
    epochs: int = 32,
    batch: int = 64,
    seed: int = 0,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train, quantize and write the finder bundle to `out`; returns its metrics."""
    from tinysmile.finder.bundle import write_finder_bundle
    from tinysmile.finder.evaluate import choose_threshold, score_int8_frames
    from tinysmile.train.train import import_tensorflow, seed_everything

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not stores:
        raise TinysmileError("detector train: give at least one --data STORE")
    started = time.time()
    crops, photos, train_counts = load_faces(stores, "train", say, out / TEACHER_FILE)
    vcrops, vphotos, val_counts = load_faces(stores, "val", say, out / TEACHER_FILE)
    for split, into, counts in (("train", photos, train_counts), ("val", vphotos, val_counts)):
        logged, logged_counts = load_captures(list(captures or []), split, say)
        into += logged
        counts.update(logged_counts)
    if not crops and not photos:
        raise TinysmileError("detector train: the stores hold no training faces")
    say(f"making {frames} training frames")
    x, boxes, _ = make_frames(crops, photos, frames, seed, say)
    y = encode_targets(boxes)
    vx, vboxes, vframe_boxes = make_frames(
        vcrops or crops, vphotos or photos, val_frames, seed + 1000
    )
    vy = encode_targets(vboxes)

    import_tensorflow()
    import keras

    seed_everything(seed)
    model = build_finder()
    spec_float = lambda p: to_float(_spec(), p)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=finder_loss())
    steps = max(1, frames // batch)
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, epochs * steps, alpha=0.02)
    model.optimizer.learning_rate = schedule  # type: ignore[attr-defined]
    fit_started = time.time()
    history = model.fit(
        spec_float(x),
        y,
        batch_size=batch,
        epochs=epochs,
        validation_data=(spec_float(vx), vy),
        verbose=2,
        shuffle=True,
    )
    fit_s = time.time() - fit_started
    model.save(out / "finder.keras")
    rep = x[np.random.default_rng(seed).choice(len(x), 256, replace=False)]
    bundle = write_finder_bundle(out / "bundle", model, rep)
    scores, faces = score_int8_frames(bundle, vx)
    chosen = choose_threshold(bundle, scores, faces, vframe_boxes)
    meta = dict(bundle.meta)
    meta["finder"] = {**meta["finder"], **chosen["finder"]}
    meta["metrics"] = {"val": chosen["metrics"]}
    meta["provenance"] = {
        "data": {
            "train": train_counts,
            "val": val_counts,
            "stores": [Path(s).name for s in stores],
        },
        "frames": {"train": frames, "val": val_frames, "seed": seed},
        "epochs": epochs,
        "batch": batch,
        "macs": macs(),
        "loss": [round(float(v), 4) for v in history.history["loss"]],
        "val_loss": [round(float(v), 4) for v in history.history["val_loss"]],
        "fit_seconds": round(fit_s, 1),
        "total_seconds": round(time.time() - started, 1),
    }
    from tinysmile.bundle import write_bundle

    bundle = write_bundle(out / "bundle", bundle.model_bytes(), meta)
    from tinysmile.compiler.api import compile_in_memory
    from tinysmile.finder.bundle import finder_card

    report = compile_in_memory(bundle.model_bytes()).report
    (out / "bundle" / "MODEL_CARD.md").write_text(finder_card(meta, report))
    say(f"val: {json.dumps(chosen['metrics'])}")
    return meta


def _spec() -> Any:
    from tinysmile.finder.bundle import finder_spec

    return finder_spec()
