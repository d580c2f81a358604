"""Contact sheets: a PNG grid of store or folder images, each optionally followed by
augmented variants, so augmentation strength can be judged by eye."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tinysmile.errors import TinysmileError

CAPTION = 12  # pixels of caption strip under each tile
GAP = 2
COLUMNS_PLAIN = 8


def _tile(image: np.ndarray, caption: str, tile: int) -> np.ndarray:
    import cv2

    out = np.full((tile + CAPTION, tile), 255, dtype=np.uint8)
    out[:tile] = image.reshape(tile, tile)
    cv2.putText(
        out,
        caption[: max(1, tile // 6)],
        (1, tile + CAPTION - 3),
        cv2.FONT_HERSHEY_PLAIN,
        0.7,
        0,
        1,
    )
    return out


def contact_sheet(rows: list[list[np.ndarray]], background: int = 200) -> np.ndarray:
    """Grid of equally sized uint8 tiles; short rows are padded with background."""
    if not rows or not any(rows):
        raise TinysmileError("contact sheet: no images")
    th, tw = rows[0][0].shape[:2]
    ncols = max(len(r) for r in rows)
    sheet = np.full(
        (len(rows) * (th + GAP) + GAP, ncols * (tw + GAP) + GAP), background, dtype=np.uint8
    )
    for i, row in enumerate(rows):
        for j, t in enumerate(row):
            y, x = GAP + i * (th + GAP), GAP + j * (tw + GAP)
            sheet[y : y + th, x : x + tw] = t
    return sheet


def _pick_images(
    store_dir: Path | None,
    folder: Path | None,
    task: str,
    split: str | None,
    count: int,
    rng: np.random.Generator,
) -> list[tuple[Path, str]]:
    if store_dir is not None:
        from tinysmile.data.store import TASK_LABELS, Store

        with Store(store_dir, create=False) as store:
            samples = store.samples(split=split, task=task)
        if not samples:
            raise TinysmileError(
                f"{store_dir}: no {task} samples" + (f" in {split}" if split else "")
            )
        chosen = rng.choice(len(samples), size=min(count, len(samples)), replace=False)
        return [(samples[i].path, TASK_LABELS[task][samples[i].label]) for i in sorted(chosen)]
    from tinysmile.data.importers import _is_image_name, _walk_files

    assert folder is not None
    if not folder.is_dir():
        raise TinysmileError(f"{folder}: not a folder")
    files = [p for p in _walk_files(folder) if _is_image_name(p)]
    if not files:
        raise TinysmileError(f"{folder}: no image files")
    return [(p, p.parent.name) for p in files[:count]]


def preview_sheet(
    out: str | Path,
    *,
    store_dir: str | Path | None = None,
    folder: str | Path | None = None,
    task: str = "smile",
    split: str | None = None,
    count: int = 16,
    augment_variants: int = 0,
    transforms: list[str] | None = None,
    strength: float = 1.0,
    seed: int = 0,
    tile: int = 64,
    face_crop: str = "none",
) -> dict[str, Any]:
    """Write the sheet PNG; with augment_variants > 0 each row is one image and its variants."""
    import cv2

    from tinysmile.data.augment import augment
    from tinysmile.data.preprocess import PreprocessSpec, load_image, preprocess

    if count < 1 or tile < 8 or augment_variants < 0:
        raise TinysmileError("preview: count >= 1, size >= 8 and variants >= 0 please")
    rng = np.random.default_rng(seed)
    spec = PreprocessSpec(height=tile, width=tile, face_crop=face_crop)
    picked = _pick_images(
        Path(store_dir) if store_dir else None,
        Path(folder) if folder else None,
        task,
        split,
        count,
        rng,
    )
    tiles: list[tuple[np.ndarray, str, list[np.ndarray]]] = []
    for path, label in picked:
        try:
            pixels = preprocess(spec, load_image(path))
        except TinysmileError:
            continue  # an unreadable file in a folder preview is not worth stopping for
        variants = [
            augment(
                pixels, rng, strength, transforms=transforms, p=0.25 if transforms is None else 1.0
            )
            for _ in range(augment_variants)
        ]
        tiles.append((pixels, label, variants))
    if not tiles:
        raise TinysmileError("preview: none of the picked images could be read")
    if augment_variants:
        rows = [
            [_tile(p, label, tile)] + [_tile(v, f"aug{k + 1}", tile) for k, v in enumerate(vs)]
            for p, label, vs in tiles
        ]
    else:
        flat = [_tile(p, label, tile) for p, label, _ in tiles]
        rows = [flat[i : i + COLUMNS_PLAIN] for i in range(0, len(flat), COLUMNS_PLAIN)]
    sheet = contact_sheet(rows)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", sheet)
    if not ok:
        raise TinysmileError(f"{out}: PNG encoding failed")
    try:
        out.write_bytes(buf.tobytes())
    except OSError as exc:
        raise TinysmileError(f"{out}: cannot write ({exc.strerror or exc})") from None
    return {"rows": len(rows), "columns": max(len(r) for r in rows), "images": len(tiles)}
