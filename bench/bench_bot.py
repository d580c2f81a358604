"""The smiling bot's framing, end to end: whole camera frames in, a decision out. Prints
tables and writes a contact sheet; not a test.

    python bench/bench_bot.py [--frames 400] [--model BUNDLE] [--sheet bot.png] [--device 8]
                              [--json]

Framing rows (each through the bundle's own preprocessing and int8 model):
- centre crop: the square in the middle of the frame (what the app did before the finder);
- tiny finder: tinysmile's face finder (`tinysmile/models/face_finder`), the C the board runs,
  built for this machine (`pi run --detector tiny`, the same bytes as the board: tested);
- blazeface: MediaPipe's BlazeFace on the host (the Pi's default), for reference.
Data (faces none of the models trained on: test split by the store's hash rule):
- scenes: SMILEsmileD test faces placed in 320x240 scenes (`tinysmile.pi.scenes`, hard-edged
  squares on synthetic rooms: a generator the finder never trained on), face 96-160 px;
- genki: GENKI-4K test-split photos of the shared part, letterboxed into the 320x240 camera
  frame as `tinysmile frame` converts a photo; their true box is BlazeFace's on the photo.
- no face: parts of the same GENKI-4K test photos away from their faces, scaled to fill the
  frame: false alarms (a face reported where there is none; the centre crop always reports
  one).
A face counts as found when the framed square overlaps the true square (the placed crop, or
the square the same framing rule takes around the teacher's box) with IoU >= 0.3; a frame
whose face is missed scores lowest (the bot says no smile). With `--device N`, N frames also
run on the emulated board (app firmware with the finder): instructions per frame for
detect / crop / classify, and the device's decisions against the host's.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

SHARED = Path(__file__).resolve().parent.parent.parent / "shared/datasets"
SMILES = SHARED / "smilesmiled/SMILEs"
GENKI = SHARED / "genki4k"
FRAME = (320, 240)
FOUND_IOU = 0.3


def iou(a, b) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_split(files: list[Path]) -> list[Path]:
    from tinysmile.data.store import content_hash, split_for_hash

    return [f for f in files if split_for_hash(content_hash(f.read_bytes())) == "test"]


def scene_frames(n: int, seed: int) -> list[dict]:
    from tinysmile.data.preprocess import load_image, to_gray
    from tinysmile.pi.scenes import make_scene

    rng = np.random.default_rng(seed)
    out = []
    for folder, label in (("positives", 1), ("negatives", 0)):
        files = test_split(sorted((SMILES / folder).rglob("*.jpg")))[: n // 2]
        for f in files:
            s = make_scene(to_gray(load_image(f)), rng)
            out.append({"name": f.name, "frame": s.image, "truth": s.face, "label": label})
    return out


def genki_frames(n: int, spec) -> list[dict]:
    """Letterboxed test-split photos; truth: the framing rule around BlazeFace's box."""
    from tinysmile.data.preprocess import framed_crop, load_image, to_gray
    from tinysmile.finder.scenes import letterbox
    from tinysmile.pi.detect import BlazeFaceDetector

    labels = [ln.split() for ln in (GENKI / "labels.txt").read_text().splitlines() if ln.strip()]
    files = test_split(sorted((GENKI / "files").glob("*.jpg")))

    def label(f: Path) -> int:
        return int(float(labels[int(f.stem.replace("file", "")) - 1][0]))

    # Half smiling, half not (GENKI-4K lists its smiles first).
    picked = [f for f in files if label(f) == 1][: n // 2] + [f for f in files if label(f) == 0][
        : n // 2
    ]
    teacher = BlazeFaceDetector()
    out = []
    for f in picked:
        gray = to_gray(load_image(f))
        faces = teacher.detect(gray)
        if not faces:
            continue  # no teacher box: no truth to judge by
        frame, s, x0, y0 = letterbox(gray, *FRAME)
        bx, by, bw, bh = faces[0]
        box = (round(bx * s + x0), round(by * s + y0), round(bw * s), round(bh * s))
        out.append(
            {
                "name": f.name,
                "frame": frame,
                "truth": framed_crop(spec, box, FRAME[1], FRAME[0]),
                "label": label(f),
            }
        )
    return out


def no_face_frames(n: int, seed: int) -> list[np.ndarray]:
    """GENKI-4K test-split photos' backgrounds, clear of the face BlazeFace finds (grown by
    half its side), scaled to fill the camera frame."""
    from tinysmile.data.preprocess import load_image, to_gray
    from tinysmile.finder.scenes import Photo, photo_background
    from tinysmile.pi.detect import BlazeFaceDetector

    rng = np.random.default_rng(seed)
    teacher = BlazeFaceDetector()
    out = []
    for f in test_split(sorted((GENKI / "files").glob("*.jpg")))[:n]:
        gray = to_gray(load_image(f))
        faces = teacher.detect(gray)
        if faces:
            out.append(photo_background(Photo(gray, tuple(faces[0])), rng, *FRAME))
    return out


def false_alarm_rows(bundle, frames: list[np.ndarray]) -> list[dict]:
    from tinysmile.pi.camera import Frame
    from tinysmile.pi.loop import Bot

    rows = []
    for name, det in (("tiny finder", "tiny"), ("blazeface", "blazeface")):
        bot = Bot(bundle, detector=det)
        alarms = sum(bot.step(Frame(f"bg{i}", f))["face"] is not None for i, f in enumerate(frames))
        rows.append({"framing": name, "false_alarms": alarms / max(1, len(frames))})
    return rows


def run_rows(bundle, data: list[dict]) -> list[dict]:
    from tinysmile.pi.camera import Frame
    from tinysmile.pi.loop import Bot
    from tinysmile.train.metrics import roc_auc

    labels = np.array([d["label"] for d in data])
    rows = []
    for name, det in (("centre crop", "none"), ("tiny finder", "tiny"), ("blazeface", "blazeface")):
        bot = Bot(bundle, detector=det)
        scores, found, ms = [], 0, []
        for d in data:
            t0 = time.perf_counter()
            r = bot.step(Frame(d["name"], d["frame"]))
            ms.append((time.perf_counter() - t0) * 1e3)
            ok = r["face"] is not None and iou(r["crop"], d["truth"]) >= FOUND_IOU
            found += ok
            scores.append(r["output_int8"] if ok else -129)
            d.setdefault("records", {})[name] = r
        rows.append(
            {
                "framing": name,
                "found": found / len(data),
                "auc": roc_auc(labels, np.array(scores)),
                "host_ms": float(np.median(ms)),
            }
        )
    return rows


def contact_sheet(data: list[dict], path: Path, per_row: int = 8, count: int = 48) -> None:
    """Frames with the finder's framed square (green: found, red: missed or false), the
    crop it classified and its decision; misses and false alarms first."""
    import cv2

    def bad(d):
        r = d["records"]["tiny finder"]
        return r["face"] is None or iou(r["crop"], d["truth"]) < FOUND_IOU

    order = sorted(data, key=lambda d: (not bad(d), d["name"]))[:count]
    tiles = []
    for d in order:
        r = d["records"]["tiny finder"]
        img = cv2.cvtColor(d["frame"], cv2.COLOR_GRAY2BGR)
        tx, ty, ts, _ = d["truth"]
        cv2.rectangle(img, (tx, ty), (tx + ts, ty + ts), (255, 160, 0), 1)
        colour = (0, 0, 255) if bad(d) else (0, 200, 0)
        text = "no face"
        if r["face"] is not None:
            x, y, s, _ = r["crop"]
            cv2.rectangle(img, (x, y), (x + s, y + s), colour, 2)
            crop = cv2.resize(
                d["frame"][y : y + s, x : x + s], (72, 72), interpolation=cv2.INTER_AREA
            )
            img[0:72, 0:72] = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
            text = f"{'smile' if r['smile'] else 'no smile'} {r['output_int8']}"
        truth = "smile" if d["label"] else "no smile"
        cv2.putText(
            img, f"{text} (true: {truth})", (4, 232), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1
        )
        tiles.append(img)
    while len(tiles) % per_row:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + per_row]) for i in range(0, len(tiles), per_row)]
    cv2.imwrite(str(path), np.vstack(rows))


def device_rows(bundle, data: list[dict], n: int) -> dict:
    """N frames on the emulated board running the app with the bundled finder (`tinysmile
    frame`): instructions per frame for detect / crop / classify (exact, -icount), and
    whether every box, score and decision equals the host's."""
    import tempfile

    import cv2

    from tinysmile.device.frames import run_frames

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, d in enumerate(data[:n]):
            path = Path(tmp) / f"{i:03d}_{d['name']}.png"
            cv2.imwrite(str(path), d["frame"])
            paths.append(str(path))
        res = run_frames(str(bundle.path), "qemu-cortex-m4", paths, detector="bundled")
    counts = [r["counts"] for r in res["frames"]]
    found = [c for c, r in zip(counts, res["frames"], strict=True) if r["device_face"]]
    stages = ("detect", "crop", "classify")
    return {
        "frames": len(counts),
        "with_face": len(found),
        "same_as_host": sum(r["same"] for r in res["frames"]),
        "unit": res["unit"],
        # The median over frames with a face (a frame without one skips crop and classify).
        "median": {k: int(np.median([c[k] for c in found])) for k in stages} if found else {},
        "max": {k: int(max(c[k] for c in counts)) for k in stages},
    }


def ram_rows(bundle) -> list[dict]:
    """RAM and flash of the app with the finder (native runtime), the camera frame
    included: the SparkFun Edge (its HM01B0 frame) and the Nano 33 BLE Sense, which has no
    camera in its board file, here with a 320x240 frame arriving over serial."""
    import dataclasses

    from tinysmile.boards import load_board
    from tinysmile.bundle import load_bundle
    from tinysmile.compiler.api import compile_in_memory
    from tinysmile.device.budget import native_budget
    from tinysmile.finder.bundle import default_finder_path

    smile = compile_in_memory(bundle.model_bytes()).report
    finder = compile_in_memory(load_bundle(default_finder_path()).model_bytes()).report
    rows = []
    for board_id in ("sparkfun-edge", "arduino-nano-33-ble-sense"):
        board = load_board(board_id)
        if not board.camera:
            data = {**board.data, "camera": {"driver": "", "width": FRAME[0], "height": FRAME[1]}}
            board = dataclasses.replace(board, data=data)
        b = native_budget(smile, board, "app", finder).to_dict()
        cam = board.camera
        rows.append(
            {
                "board": board_id,
                "frame": f"{cam['width']}x{cam['height']}",
                "ram": b["ram_total"],
                "ram_bytes": b["ram_bytes"],
                "flash": b["flash_total"],
                "flash_bytes": b["flash_bytes"],
                "fits": b["ram_total"] <= b["ram_bytes"] and b["flash_total"] <= b["flash_bytes"],
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=400, help="per data set")
    ap.add_argument("--model", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sheet", type=Path, default=Path("bot_sheet.png"))
    ap.add_argument("--device", type=int, default=0, help="frames to run on the emulated board")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from tinysmile.data.preprocess import PreprocessSpec
    from tinysmile.pi.loop import load_pi_bundle

    bundle = load_pi_bundle(args.model)
    spec = PreprocessSpec.from_dict(bundle.preprocess)
    sets = {
        "scenes": scene_frames(args.frames, args.seed),
        "genki": genki_frames(args.frames, spec),
    }
    result: dict = {"model": bundle.name, "sets": {}}
    for name, data in sets.items():
        result["sets"][name] = {"frames": len(data), "rows": run_rows(bundle, data)}
    empty = no_face_frames(args.frames, args.seed)
    result["no_face"] = {"frames": len(empty), "rows": false_alarm_rows(bundle, empty)}
    contact_sheet(sets["scenes"] + sets["genki"], args.sheet)
    result["sheet"] = str(args.sheet)
    result["ram"] = ram_rows(bundle)
    if args.device:
        result["device"] = device_rows(bundle, sets["scenes"], args.device)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    t = Table(title=f"Framing on whole 320x240 frames ({bundle.name})")
    for col in ("data", "framing", "faces found", "AUC", "host ms/frame"):
        t.add_column(col, justify="left" if col in ("data", "framing") else "right")
    for name, s in result["sets"].items():
        for r in s["rows"]:
            t.add_row(
                f"{name} ({s['frames']})",
                r["framing"],
                f"{100 * r['found']:.1f} %",
                f"{r['auc']:.4f}",
                f"{r['host_ms']:.1f}",
            )
    Console().print(t)
    nf = result["no_face"]
    f = Table(title=f"No-face frames ({nf['frames']} GENKI-4K test backgrounds): false alarms")
    f.add_column("framing")
    f.add_column("false alarms", justify="right")
    for row in nf["rows"]:
        f.add_row(row["framing"], f"{100 * row['false_alarms']:.1f} %")
    Console().print(f)
    r = Table(title="The app with the finder (native): RAM and flash, camera frame included")
    for col in ("board", "frame", "RAM", "of", "flash", "of", "fits"):
        r.add_column(col, justify="left" if col == "board" else "right")
    for row in result["ram"]:
        r.add_row(
            row["board"],
            row["frame"],
            f"{row['ram']:,}",
            f"{row['ram_bytes']:,}",
            f"{row['flash']:,}",
            f"{row['flash_bytes']:,}",
            "yes" if row["fits"] else "NO",
        )
    Console().print(r)
    if "device" in result:
        d = result["device"]
        dt = Table(
            title=f"Emulated Cortex-M4, {d['frames']} scene frames ({d['with_face']} with a face), "
            f"{d['same_as_host']} equal to the host"
        )
        for col in ("stage", f"median {d['unit']} (frames with a face)", "max"):
            dt.add_column(col, justify="left" if col == "stage" else "right")
        for k in ("detect", "crop", "classify"):
            dt.add_row(k, f"{d['median'].get(k, 0):,}", f"{d['max'][k]:,}")
        total = sum(d["median"].values()) if d["median"] else 0
        dt.add_row("total", f"{total:,}", "")
        Console().print(dt)
    print(f"contact sheet: {args.sheet}")


if __name__ == "__main__":
    main()
