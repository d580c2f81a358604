"""The face finder: its targets, its training frames, `tinysmile detector train | evaluate`
and `pi run --detector tiny` (the board's C on the host)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SMILES = REPO.parent / "shared" / "datasets" / "smilesmiled" / "SMILEs"
needs_smilesmiled = pytest.mark.skipif(
    not SMILES.is_dir(), reason=f"SMILEsmileD not found at {SMILES}"
)


def test_targets_mark_the_centre_cell_and_leave_its_neighbours_out():
    from tinysmile.finder.model import encode_targets, grid_shape

    # A 16 px face at (20, 10): centre (28, 18), in cell (x 3, y 2) at (0.5, 0.25) of it,
    # trained as 8 times that (OFFSET_SCALE); side 16 = SIZE_BASE * 2**0.
    t = encode_targets([(20.0, 10.0, 16.0, 16.0), None])
    gh, gw = grid_shape()
    assert t.shape == (2, gh, gw, 6) == (2, 8, 10, 6)
    pos = t[0]
    assert np.argwhere(pos[..., 0] == 1).tolist() == [[2, 3]]
    np.testing.assert_allclose(pos[2, 3], [1, 1, 4.0, 2.0, 0.0, 1])
    # Score weight 0 on the eight neighbours only; the box terms on all nine, each cell's
    # centre seen from itself: from cell (x 2, y 1) the centre is at (1.5, 1.25) cells.
    near = [(y, x) for y in (1, 2, 3) for x in (2, 3, 4)]
    assert sorted(map(tuple, np.argwhere(pos[..., 1] == 0).tolist())) == [
        c for c in near if c != (2, 3)
    ]
    assert sorted(map(tuple, np.argwhere(pos[..., 5] == 1).tolist())) == near
    np.testing.assert_allclose(pos[1, 2], [0, 0, 12.0, 10.0, 0.0, 1])
    # No face: every cell a weighted negative.
    assert (t[1, ..., 0] == 0).all() and (t[1, ..., 1] == 1).all() and (t[1, ..., 5] == 0).all()
    # A face twice as large: log2 side 1, trained as 4 (SIZE_SCALE); centre past the grid:
    # no positive.
    assert encode_targets([(0.0, 0.0, 32.0, 32.0)])[0, 2, 2, 4] == 4.0
    assert encode_targets([(100.0, 10.0, 16.0, 16.0)])[0, ..., 0].sum() == 0


def test_a_pasted_crops_box_frames_back_to_the_crop():
    """The box a training frame gives for a pasted crop is the one the smile bundle's
    framing rule turns back into that crop: the finder learns to frame like the training
    crops."""
    from tinysmile.data.pixels import frame_square, framing_q16
    from tinysmile.data.preprocess import SOURCE_FRAMING
    from tinysmile.finder.scenes import crop_box

    side_q16, shift_q16 = framing_q16(*SOURCE_FRAMING["smilesmiled"])
    rng = np.random.default_rng(5)
    for _ in range(200):
        side = int(rng.integers(40, 200))
        x, y = int(rng.integers(0, 320 - side)), int(rng.integers(0, 240 - side))
        bx, by, bw, bh = crop_box(x, y, side)
        got = frame_square(
            (round(bx), round(by), round(bw), round(bh)), 320, 240, side_q16, shift_q16
        )
        # The box is rounded to whole pixels before framing: a pixel or two either way.
        assert abs(got[0] - x) <= 2 and abs(got[1] - y) <= 2 and abs(got[2] - side) <= 2, (
            (x, y, side),
            got,
        )


def test_training_frames_put_the_face_where_the_box_says():
    """The same draws with a black and with a white crop: the pixels that differ are where
    the face went, and the framing rule on the frame's box gives back that square."""
    from tinysmile.data.pixels import frame_square, framing_q16
    from tinysmile.data.preprocess import SOURCE_FRAMING
    from tinysmile.finder.scenes import crop_frame, make_frame

    side_q16, shift_q16 = framing_q16(*SOURCE_FRAMING["smilesmiled"])
    checked = 0
    for seed in range(20):
        dark, box = crop_frame(np.zeros((64, 64), np.uint8), [], np.random.default_rng(seed))
        light, same = crop_frame(np.full((64, 64), 255, np.uint8), [], np.random.default_rng(seed))
        assert box == same
        ys, xs = np.nonzero(dark != light)
        assert ys.size, seed
        x, y, side = frame_square(tuple(round(v) for v in box), 10**4, 10**4, side_q16, shift_q16)
        # The face is pasted whole only where it lies inside the frame; feathered edges
        # may leave its outermost rows unchanged: a pixel or two inside the square.
        assert x - 2 <= xs.min() and xs.max() <= x + side + 1, (seed, x, side, xs.min(), xs.max())
        assert y - 2 <= ys.min() and ys.max() <= y + side + 1, (seed, y, side, ys.min(), ys.max())
        if 0 < x and x + side < 320 and 0 < y and y + side < 240:
            checked += 1
            assert xs.min() <= x + side // 4 and xs.max() >= x + 3 * side // 4
    assert checked >= 5
    # Whole frames: the camera's size, faces and empty frames both occur.
    rng = np.random.default_rng(0)
    kinds = [make_frame([np.full((64, 64), 255, np.uint8)], [], rng) for _ in range(40)]
    assert all(f.shape == (240, 320) and f.dtype == np.uint8 for f, _ in kinds)
    assert 20 <= sum(b is not None for _, b in kinds) < 40


def _store_of(tmp: Path, per_class: int) -> Path:
    """A small store of SMILEsmileD crops (folder import)."""
    src = tmp / "faces"
    for folder, cls in (("positives/positives7", "smile"), ("negatives/negatives7", "no_smile")):
        (src / cls).mkdir(parents=True)
        for f in sorted((SMILES / folder).glob("*.jpg"))[:per_class]:
            shutil.copy(f, src / cls / f.name)
    store = tmp / "store"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tinysmile.cli",
            "data",
            "import",
            "folder",
            str(src),
            "--store",
            str(store),
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    return store


@pytest.mark.slow
@needs_smilesmiled
def test_detector_train_then_evaluate_agrees_with_the_c_finder(tmp_path):
    """`detector train` writes a finder bundle the compiler takes; `detector evaluate`
    (LiteRT's reference kernels + the numpy decode) reports the boxes that the compiled C
    with the C decode (`pi run --detector tiny`) finds on the same frames."""
    from tinysmile.bundle import load_bundle
    from tinysmile.compiler.api import compile_in_memory
    from tinysmile.finder.scenes import make_frame
    from tinysmile.pi.detect import TinyDetector

    store = _store_of(tmp_path, 40)
    out = tmp_path / "finder"
    proc = subprocess.run(
        [sys.executable, "-m", "tinysmile.cli", "detector", "train", "--data", str(store),
         "--out", str(out), "--frames", "256", "--val-frames", "64", "--epochs", "1"],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    bundle = load_bundle(out / "bundle")
    assert bundle.meta["task"] == "finder"
    assert bundle.meta["output"]["shape"] == [1, 8, 10, 4]
    assert -128 <= bundle.meta["finder"]["score_threshold_int8"] <= 127
    report = compile_in_memory(bundle.model_bytes()).report
    assert report["input"]["shape"] == [1, 60, 80, 1]

    import cv2

    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(1)
    crops = [
        cv2.imread(str(f), 0) for f in sorted((SMILES / "positives/positives7").glob("*.jpg"))[:8]
    ]
    rows = [("image", "x", "y", "w", "h")]
    for i in range(12):
        frame, box = make_frame(crops, [], rng)
        cv2.imwrite(str(frames / f"f{i:02d}.png"), frame)
        rows.append((f"f{i:02d}.png", *([round(v) for v in box] if box else ["", "", "", ""])))
    with open(tmp_path / "boxes.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    proc = subprocess.run(
        [sys.executable, "-m", "tinysmile.cli", "detector", "evaluate", str(out / "bundle"),
         "--frames", str(frames), "--boxes", str(tmp_path / "boxes.csv"), "--json"],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout)
    assert res["frames"] == 12 and res["frame_size"] == "320x240"
    assert (
        res["groups"]["all"]["frames_with_face"]
        + res["groups"]["all"].get("frames_without_face", 0)
        == 12
    )
    tiny = TinyDetector(out / "bundle")
    for row in res["per_frame"]:
        face = tiny.find(cv2.imread(str(frames / row["image"]), 0))
        assert row["face"] == (list(face[:4]) if face else None), row["image"]
        assert row["score"] == (face[4] if face else None)


def test_detector_evaluate_refuses_what_it_cannot_use(tmp_path, capsys):
    from tinysmile.cli import main
    from tinysmile.errors import TinysmileError
    from tinysmile.finder.evaluate import read_boxes

    (tmp_path / "empty").mkdir()
    smile = REPO / "tinysmile" / "models" / "smile_default"
    assert main(["detector", "evaluate", str(smile), "--frames", str(tmp_path / "empty")]) != 0
    assert "not a face-finder bundle" in capsys.readouterr().err
    bad = tmp_path / "boxes.csv"
    bad.write_text("image,x,y,w,h\na.png,1,2,three,4\n")
    with pytest.raises(TinysmileError, match="expected image,x,y,w,h"):
        read_boxes(bad)
    good = tmp_path / "good.csv"
    good.write_text("image,x,y,w,h\na.png,1,2,3,4\nb.png,,,,\n")
    assert read_boxes(good) == {"a.png": (1.0, 2.0, 3.0, 4.0), "b.png": None}


@needs_smilesmiled
def test_pi_run_with_the_tiny_finder_decides_like_the_board_c():
    """`pi run --detector tiny` (the finder's C through ctypes, the numpy twins for the
    decode, framing and resize, the smile model's C) gives the bytes of the board's own
    pipeline, tsm_bot.c built for the host (HostBot; tests/test_device_app.py holds the
    board to HostBot): the same box, crop, int8 output and decision on every frame."""
    import cv2

    from tinysmile.bundle import load_bundle
    from tinysmile.device.bot import HostBot
    from tinysmile.finder.bundle import default_finder_path
    from tinysmile.pi.camera import Frame
    from tinysmile.pi.loop import Bot
    from tinysmile.pi.scenes import make_scene

    smile, finder = load_bundle(None), load_bundle(default_finder_path())
    host = HostBot(smile, finder, 320, 240)
    bot = Bot(smile, detector="tiny", engine="native")
    rng = np.random.default_rng(7)
    files = sorted((SMILES / "positives/positives7").glob("*.jpg"))[:12]
    files += sorted((SMILES / "negatives/negatives7").glob("*.jpg"))[:12]
    frames = [make_scene(cv2.imread(str(f), 0), rng).image for f in files]
    frames += [np.full((240, 320), v, np.uint8) for v in (0, 128)]  # no face to find
    found = 0
    for frame in frames:
        want = host.decide(frame)
        got = bot.step(Frame("scene", frame))
        if want.face is None:
            assert got["face"] is None
            continue
        found += 1
        assert tuple(got["face"]) == want.face
        assert tuple(got["crop"]) == (*want.square[:2], want.square[2], want.square[2])
        assert got["output_int8"] == int(want.output_int8[0])
        assert got["smile"] == want.smile
    assert found >= len(files) // 2  # the comparison ran on found faces, not only on none


@needs_smilesmiled
def test_evaluate_and_predict_with_the_tiny_finder_on_whole_frames(tmp_path):
    """`evaluate --detector tiny` crops each whole image around the finder's face and counts
    the images where it finds none; `predict --detector tiny` reports the crop it took: both
    the crop the board's C takes (HostBot) on the same frame."""
    import cv2

    from tinysmile.bundle import load_bundle
    from tinysmile.device.bot import HostBot
    from tinysmile.finder.bundle import default_finder_path
    from tinysmile.pi.scenes import make_scene

    rng = np.random.default_rng(11)
    tree = tmp_path / "frames"
    paths = []
    for folder, cls in (("positives/positives7", "smile"), ("negatives/negatives7", "no_smile")):
        (tree / cls).mkdir(parents=True)
        for f in sorted((SMILES / folder).glob("*.jpg"))[20:26]:
            path = tree / cls / f"{f.stem}.png"
            cv2.imwrite(str(path), make_scene(cv2.imread(str(f), 0), rng).image)
            paths.append(path)
    cv2.imwrite(str(tree / "no_smile" / "empty.png"), np.full((240, 320), 90, np.uint8))
    paths.append(tree / "no_smile" / "empty.png")
    host = HostBot(load_bundle(None), load_bundle(default_finder_path()), 320, 240)
    want = {p.name: host.decide(cv2.imread(str(p), 0)) for p in paths}

    cmd = [sys.executable, "-m", "tinysmile.cli"]
    proc = subprocess.run(
        [*cmd, "evaluate", str(REPO / "tinysmile/models/smile_default"), "--data", str(tree),
         "--detector", "tiny", "--json"],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout)
    assert res["n"] == len(paths)
    found = sum(r.face is not None for r in want.values())
    assert res["faces_found"] == pytest.approx(found / len(paths))
    assert want["empty.png"].face is None

    proc = subprocess.run(
        [*cmd, "predict", str(REPO / "tinysmile/models/smile_default"), *map(str, paths),
         "--detector", "tiny", "--json"],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    for p in json.loads(proc.stdout)["predictions"]:
        w = want[Path(p["image"]).name]
        assert p["face_found"] == (w.face is not None)
        if w.face is not None:
            assert p["crop"] == [*w.square[:2], w.square[2], w.square[2]]
            assert p["output_int8"] == int(w.output_int8[0])


def test_a_face_half_in_sight_is_neither_a_face_to_find_nor_an_empty_frame():
    """detection_metrics, by hand: four frames of 320x240: a face found, a face missed, a
    face whose centre left the frame (the finder firing on it or not changes nothing), an
    empty frame with an alarm."""
    from tinysmile.finder.evaluate import detection_metrics

    nan = [np.nan] * 4
    truth = np.array([[100, 80, 60, 60], [10, 10, 50, 50], [300, 100, 60, 60], nan], float)
    found = [(104, 80, 60, 60, 40), None, (290, 100, 40, 40, 30), (0, 0, 30, 30, 20)]
    m = detection_metrics(found, truth, (320, 240))
    assert (m["frames_with_face"], m["frames_without_face"]) == (2, 1)
    assert m["found"] == 0.5 and m["false_alarms"] == 1.0
    same = detection_metrics([*found[:2], None, found[3]], truth, (320, 240))
    assert same == m
    # Without the frame's size every box is a face to find: the half face counts.
    assert detection_metrics(found, truth)["frames_with_face"] == 3
    assert m["centre_error"] == pytest.approx(4 / 60)


def test_capture_log_frames_become_photos_with_the_pis_box(tmp_path):
    """`detector train --captures LOG`: each logged frame with its face box, scaled to the
    frame the log kept (long side 160 here, of 320), split by the hash rule on its bytes;
    entries decided on the centre square or without a face are left out."""
    from tinysmile.data.store import content_hash, split_for_hash
    from tinysmile.finder.train import load_captures
    from tinysmile.pi.capturelog import CaptureLog

    log = CaptureLog(tmp_path / "log", 10**8, 160)
    rng = np.random.default_rng(3)
    crop = np.zeros((48, 48), np.uint8)
    for i in range(24):
        frame = rng.integers(0, 255, (240, 320), dtype=np.uint8)
        meta = {"face": [40 + 4 * i, 60, 100, 100], "detector": "blazeface"}
        if i == 5:
            meta["detector"] = "none"
        if i == 6:
            meta["face"] = None
        log.add(crop, frame, meta)
    got = {s: load_captures([tmp_path / "log"], s) for s in ("train", "val", "test")}
    total = sum(len(p) for p, _ in got.values())
    assert total == 22 and got["train"][1]["capture entries left out"] == 2
    from tinysmile.pi.capturelog import FRAME_FILE, entry_folders, read_entry

    by_hash = {}
    for entry in entry_folders(tmp_path / "log"):
        data = (entry / FRAME_FILE).read_bytes()
        by_hash[content_hash(data)] = (read_entry(entry), data)
    for split, (photos, counts) in got.items():
        assert counts["capture frames"] == len(photos)
        want = [
            tuple(v // 2 for v in meta["face"])
            for meta, data in by_hash.values()
            if split_for_hash(content_hash(data)) == split
            and meta["face"] is not None
            and meta["detector"] != "none"
        ]
        assert sorted(p.box for p in photos) == sorted(want)
        assert all(p.image.shape == (120, 160) for p in photos)
