"""The face finder as a model bundle: the int8 .tflite plus what decoding needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tinysmile.bundle import Bundle, write_bundle
from tinysmile.data.preprocess import PreprocessSpec
from tinysmile.errors import TinysmileError
from tinysmile.finder.model import (
    HEIGHT,
    OFFSET_RANGE,
    OFFSET_SCALE,
    SIZE_BASE,
    SIZE_SCALE,
    STRIDE,
    WIDTH,
    build_finder,
    grid_shape,
)

TASK = "finder"
# The score a cell must reach, as a probability, unless training chose another.
DEFAULT_SCORE = 0.5


def finder_spec(height: int = HEIGHT, width: int = WIDTH) -> PreprocessSpec:
    """The finder's input: the whole frame, area-resized, grey, pixels / 255."""
    return PreprocessSpec(height=height, width=width, face_crop="none")


def score_threshold_int8(scale: float, zero_point: int, probability: float) -> int:
    """The smallest int8 score (a logit) whose probability reaches `probability`."""
    logit = np.log(probability / (1.0 - probability))
    q = np.arange(-128, 128)
    ok = np.flatnonzero((q - zero_point) * scale >= logit)
    return int(q[ok[0]]) if ok.size else 128


def score_probability(scale: float, zero_point: int, q: int) -> float:
    """The probability an int8 score (a logit) stands for."""
    return float(1.0 / (1.0 + np.exp(-(q - zero_point) * scale)))


def is_finder(bundle: Bundle) -> bool:
    return bundle.meta.get("task") == TASK


def write_finder_bundle(
    out: str | Path,
    model: Any,
    rep_frames: np.ndarray,
    *,
    name: str = "face_finder",
    score: float = DEFAULT_SCORE,
    extra: dict[str, Any] | None = None,
) -> Bundle:
    """Quantize a Keras finder to full int8 with `rep_frames` (uint8 (N, H, W, 1), finder
    input size) as the representative set, and write it as a bundle in `out`."""
    from tinysmile.train.quantize import check_ops, convert_int8, full_range, io_quantization

    h, w = int(model.inputs[0].shape[1]), int(model.inputs[0].shape[2])
    spec = finder_spec(h, w)
    rep = np.concatenate([rep_frames, full_range(rep_frames[:1])])
    tflite = convert_int8(model, spec, rep)
    check_ops(tflite)
    (in_s, in_zp), (out_s, out_zp) = io_quantization(tflite)
    gh, gw = grid_shape(h, w)
    meta: dict[str, Any] = {
        "name": name,
        "task": TASK,
        "labels": ["face"],
        "decision": "the cell of highest score, a face when it reaches score_threshold_int8",
        "preprocess": spec.to_dict(),
        "input": {"shape": [1, h, w, 1], "dtype": "int8", "scale": in_s, "zero_point": in_zp},
        "output": {
            "shape": [1, gh, gw, 4],
            "dtype": "int8",
            "scale": out_s,
            "zero_point": out_zp,
            "meaning": "per cell: face logit, centre x and y in the cell (x offset_scale), "
            "log2 side / size_base (x size_scale)",
        },
        "finder": {
            "stride": STRIDE,
            "size_base": SIZE_BASE,
            "offset_scale": OFFSET_SCALE,
            "offset_range": list(OFFSET_RANGE),
            "size_scale": SIZE_SCALE,
            "score": score,
            "score_threshold_int8": score_threshold_int8(out_s, out_zp, score),
        },
        **(extra or {}),
    }
    return write_bundle(out, tflite, meta)


def untrained_finder_bundle(out: str | Path, seed: int = 0) -> Bundle:
    """The finder with its initial weights, for tests of everything but its accuracy."""
    from tinysmile.train.train import import_tensorflow, seed_everything

    import_tensorflow()
    seed_everything(seed)
    model = build_finder()
    rng = np.random.default_rng(seed)
    rep = rng.integers(0, 256, size=(8, HEIGHT, WIDTH, 1), dtype=np.uint8)
    return write_finder_bundle(out, model, rep, name="untrained_face_finder")


FINDER_NAME = "face_finder"


def default_finder_path() -> Path:
    """The bundled finder (`tinysmile/models/face_finder`)."""
    from tinysmile.resources import models_dir

    path = models_dir() / FINDER_NAME
    if not (path / "model.tflite").is_file():
        raise TinysmileError(f"the bundled face finder is missing: {path}")
    return path


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * float(v):.1f} %"


def finder_card(meta: dict[str, Any], report: dict[str, Any] | None = None) -> str:
    """MODEL_CARD.md of a finder bundle, from its metadata (and the compiler's report)."""
    from tinysmile.finder.scenes import FACE_SIDE

    prov = meta.get("provenance", {})
    data = prov.get("data", {})
    f = meta.get("finder", {})
    out = meta.get("output", {})
    lines = [
        f"# {meta.get('name')}",
        "",
        "Task: find the face in a whole camera frame (grey) for the smiling-bot app. Input:",
        f"the frame area-resized to {meta['input']['shape'][2]}x{meta['input']['shape'][1]};",
        (
            f"output: a {out['shape'][2]}x{out['shape'][1]} grid of cells, "
            f"{f.get('stride')} input pixels each, with a face score, the face centre inside "
            f"the cell and log2 of its side over {f.get('size_base')} input pixels. The face is "
            "the cell of highest score when it reaches "
            f"score_threshold_int8 = {f.get('score_threshold_int8')} (probability "
            f"{f.get('score')}); its box is Haar-style, so the smile bundle's framing rule crops "
            "it as the smile model's training crops were framed."
        ),
        "",
        f"Network: `tinysmile/finder/model.py`, {prov.get('macs', 0):,} MACs per frame.",
    ]
    if report:
        lines.append(
            f"Compiled by tinysmile: {report['weights_bytes']:,} B of weights, "
            f"{report['arena_bytes']:,} B of arena; ops {', '.join(report['ops'])}."
        )
    lines += ["", "## Data", ""]
    for split in ("train", "val"):
        d = data.get(split, {})
        hashes = ("content_sha256", "captures_sha256")
        counts = ", ".join(f"{v} {k}" for k, v in sorted(d.items()) if k not in hashes)
        logs = (
            f"; the capture frames' to `{d['captures_sha256']}`" if "captures_sha256" in d else ""
        )
        lines.append(
            f"- {split}: {counts} (the stores' {split} split by content hash; the samples' "
            f"hashes hash to `{d.get('content_sha256', '-')}`{logs})."
        )
    fr = prov.get("frames", {})
    lines += [
        (
            f"- {fr.get('train')} training frames and {fr.get('val')} validation frames (seed "
            f"{fr.get('seed')}), made by `tinysmile/finder/scenes.py`: face crops pasted with "
            "feathered edges, photos placed or letterboxed with BlazeFace's box as the teacher, "
            "frames without a face, then capture conditions (gain, gamma, backlight, blur, "
            "noise, JPEG). No face of any store's test split is used."
        ),
        "",
        "## Metrics (validation frames)",
        "",
        (
            "| faces found (IoU >= 0.3) | IoU >= 0.5 | false alarms (no-face frames) | mean IoU "
            "| centre error | size error |"
        ),
        "| --- | --- | --- | --- | --- | --- |",
    ]
    m = meta.get("metrics", {}).get("val", {})
    ce, se = m.get("centre_error"), m.get("size_error")
    lines.append(
        f"| {_pct(m.get('found'))} | {_pct(m.get('found_iou50'))} | "
        f"{_pct(m.get('false_alarms'))} | {m.get('mean_iou', 0):.3f} | "
        f"{'-' if ce is None else f'{ce:.3f}'} | {'-' if se is None else f'{se:.3f}'} |"
    )
    lines += [
        "",
        (
            "Centre and size error: medians over found faces, as a share of the true side. These "
            f"frames are harder than a camera's (faces down to {FACE_SIDE[0]} px, partly outside "
            "the frame, "
            "heavy degradations); the finder with the smile model on faces of the test splits, "
            "and its instructions on the emulated board: `python bench/bench_bot.py` (the "
            'README\'s "The smiling bot finds the face").'
        ),
        "",
        "## Training",
        "",
        (
            f"{prov.get('epochs')} epochs, batch {prov.get('batch')}, {prov.get('fit_seconds')} s of "
            f"fitting ({prov.get('total_seconds')} s in all) on the 2-core machine; "
            f"reproduce with `bash scripts/train_finder.sh`."
        ),
        "",
    ]
    return "\n".join(lines)
