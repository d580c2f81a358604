"""Detect -> align -> crop (`face_crop: blazeface-aligned`): the integer turned-square
sampler, the aligned crop's geometry, and one function for training and the Pi."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tinysmile.data.pixels import resize_area, rotated_square
from tinysmile.data.preprocess import PreprocessSpec, aligned_crop

REPO = Path(__file__).resolve().parents[1]
GENKI = REPO.parent / "shared" / "datasets" / "genki4k" / "files"


def test_an_upright_square_is_the_area_resize_and_a_quarter_turn_is_rot90():
    rng = np.random.default_rng(0)
    g = rng.integers(0, 256, (90, 120), dtype=np.uint8)
    # Upright, twice the output: each output pixel averages its 2x2 block, as resize_area.
    np.testing.assert_array_equal(
        rotated_square(g, (60, 45), 64, 0.0, 32, 32), resize_area(g[13:77, 28:92], 32, 32)
    )
    # The output's size: the square itself, pixel for pixel.
    np.testing.assert_array_equal(rotated_square(g, (50, 40), 30, 0.0, 30, 30), g[25:55, 35:65])
    # A quarter turn (cosine 0 and sine 1 exactly in Q14): the square's x axis runs down the
    # image and its y axis to the left, so output[v, u] is square[u, 29 - v].
    turned = rotated_square(g, (50, 40), 30, math.pi / 2, 30, 30)
    np.testing.assert_array_equal(turned, g[25:55, 35:65].T[::-1])


def test_the_integer_sampler_is_within_a_level_of_the_float_computation():
    """Random squares, turns and sizes against the same sampling in float64 (bilinear,
    edge-clamped, k x k samples per output pixel, k at most 8)."""
    rng = np.random.default_rng(1)
    g = rng.integers(0, 256, (70, 90), dtype=np.uint8).astype(np.float64)
    g = (g + np.roll(g, 1, 0) + np.roll(g, 1, 1) + np.roll(g, 1, (0, 1))) / 4  # smoother
    g8 = np.rint(g).astype(np.uint8)
    h, w = g8.shape
    cases = [
        (rng.uniform(10, 80), rng.uniform(10, 60), rng.uniform(12, 70), rng.uniform(-1.2, 1.2))
        for _ in range(20)
    ]
    # Larger than the image: at most 8 x 8 samples an output pixel (25 x 25 uncapped).
    cases.append((45.0, 35.0, 400.0, 0.4))
    for i, (cx, cy, side, angle) in enumerate(cases):
        n = int(rng.integers(8, 33)) if i < 20 else 16
        got = rotated_square(g8, (cx, cy), side, angle, n, n).astype(np.float64)
        k = min(8, max(1, math.ceil(round(side) / n)))
        t = (np.arange(n * k) + 0.5) / (n * k) * side - side / 2
        dx, dy = t[None, :], t[:, None]
        sx = cx + math.cos(angle) * dx - math.sin(angle) * dy - 0.5
        sy = cy + math.sin(angle) * dx + math.cos(angle) * dy - 0.5
        x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
        fx, fy = sx - x0, sy - y0
        img = g8.astype(np.float64)

        def at(yy, xx, img=img):
            return img[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]

        v = (at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx) * (1 - fy) + (
            at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
        ) * fy
        want = v.reshape(n, k, n, k).mean(axis=(1, 3))
        assert np.abs(got - want).max() <= 1.0 + 1e-9


@pytest.mark.parametrize("degrees", [-30, -8, 0, 25])
def test_the_aligned_crop_levels_the_eyes_and_sizes_the_face_from_them(degrees):
    """Two bright dots at the eyes of a face turned by `degrees`: in the aligned crop they lie
    on one row, the subject's right eye on the left, as far apart as the eye distance over
    the crop's side says."""
    from tinysmile.data.preprocess import EYE_TO_HAAR_SIDE

    spec = PreprocessSpec(height=48, width=48, crop_margin=0.2)
    img = np.zeros((240, 320), np.uint8)
    a = math.radians(degrees)
    mid, dist = np.array([160.0, 110.0]), 40.0
    eyes = [mid + s * dist / 2 * np.array([math.cos(a), math.sin(a)]) for s in (-1, 1)]
    for ex, ey in eyes:
        img[round(ey) - 2 : round(ey) + 3, round(ex) - 2 : round(ex) + 3] = 255
    pre = aligned_crop(spec, img, (tuple(eyes[0]), tuple(eyes[1])))
    p = pre.pixels[:, :, 0].astype(np.float64)
    left, right = p[:, :24], p[:, 24:]
    ys, xs = np.indices(p.shape)

    def centre(part, off):
        wsum = part.sum()
        return (ys[:, :24] * part).sum() / wsum, (xs[:, :24] * part).sum() / wsum + off

    (ly, lx), (ry, rx) = centre(left, 0), centre(right, 24)
    assert abs(ly - ry) < 0.5  # level
    side = EYE_TO_HAAR_SIDE * dist * (1 + 2 * spec.crop_margin)
    assert rx - lx == pytest.approx(dist / side * 48, abs=0.5)


@pytest.mark.skipif(not GENKI.is_dir(), reason=f"GENKI-4K not found at {GENKI}")
def test_training_and_the_pi_crop_with_one_function(tmp_path):
    """A GENKI-4K photo: the spec's face_crop blazeface-aligned (what training runs) and the
    Pi's detector for such a bundle give the same bytes; the aligned crop of the photo turned
    by 30 degrees is close to the upright one (a plain box crop of it is not)."""
    import cv2

    from tinysmile.data.preprocess import load_image, preprocess_detailed, whole_image_crop
    from tinysmile.pi.detect import AlignedBlazeFace, make_detector

    spec = PreprocessSpec(height=48, width=48, face_crop="blazeface-aligned")
    det = make_detector("blazeface", spec)
    assert isinstance(det, AlignedBlazeFace)
    photo = load_image(min(GENKI.glob("*.jpg")))
    train = preprocess_detailed(spec, photo)
    pi = whole_image_crop(spec, photo, det)
    assert train.face_found and pi.face_found
    np.testing.assert_array_equal(train.pixels, pi.pixels)
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY) if photo.ndim == 3 else photo
    h, w = gray.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 30, 1.0)
    turned = cv2.warpAffine(gray, m, (w, h))
    aligned = whole_image_crop(spec, turned, det).pixels.astype(int)
    plain = whole_image_crop(spec, turned, make_detector("blazeface", PreprocessSpec()))
    upright = pi.pixels.astype(int)
    assert (
        np.abs(aligned - upright).mean() < 0.5 * np.abs(plain.pixels.astype(int) - upright).mean()
    )


def test_a_store_mixing_crops_and_photos_aligns_only_the_photos(tmp_path, monkeypatch):
    """`train --face-crop blazeface-aligned` on SMILEsmileD + GENKI-4K: a GENKI-4K photo gets
    the aligned crop at the crops' framing, a SMILEsmileD crop is taken as it is (BlazeFace
    never sees it): the loader's per-source rule, with a stand-in for BlazeFace's eyes."""
    import dataclasses
    from types import SimpleNamespace

    import cv2

    from tinysmile.data import preprocess as P
    from tinysmile.train.dataset import load_samples

    spec = P.spec_for_sources(["smilesmiled", "genki4k"], 48, 48)
    assert (spec.face_crop, spec.crop_margin, spec.crop_shift_y) == (
        "haar",
        *P.SOURCE_FRAMING["smilesmiled"],
    )
    spec = dataclasses.replace(spec, face_crop="blazeface-aligned")
    eyes = ((70.0, 80.0), (110.0, 86.0))
    seen = []

    class Eyes:
        def detect_eyes(self, gray):
            seen.append(gray.shape)
            return [((0, 0, 1, 1), eyes)]

    monkeypatch.setattr(P, "_ALIGNER", [Eyes()])
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (200, 180), dtype=np.uint8)
    crop = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "photo.png"), photo)
    cv2.imwrite(str(tmp_path / "crop.png"), crop)
    samples = [
        SimpleNamespace(id="a", path=tmp_path / "photo.png", source="genki4k", label=1),
        SimpleNamespace(id="b", path=tmp_path / "crop.png", source="smilesmiled", label=0),
    ]
    got = load_samples(spec, samples).pixels
    assert seen == [photo.shape]  # the photo only
    np.testing.assert_array_equal(got[0], aligned_crop(spec, photo, eyes).pixels)
    np.testing.assert_array_equal(got[1], resize_area(crop, 48, 48).reshape(48, 48, 1))


SMILES = REPO.parent / "shared" / "datasets" / "smilesmiled" / "SMILEs"


@pytest.mark.skipif(not SMILES.is_dir(), reason="SMILEsmileD not found")
def test_evaluate_against_through_a_detector_frames_each_model_by_its_own_spec(
    tmp_path, capsys, monkeypatch
):
    """`evaluate A --detector blazeface --against B` on whole frames: B's scores are the
    ones `evaluate B --detector blazeface` gives alone (B's spec says blazeface-aligned, so
    its crops are the aligned ones), a frame without a face scoring lowest for both."""
    import json
    import shutil

    import cv2

    from tinysmile.cli import main
    from tinysmile.pi.scenes import make_scene

    default = REPO / "tinysmile" / "models" / "smile_default"
    aligned = shutil.copytree(default, tmp_path / "aligned")
    meta = json.loads((aligned / "bundle.json").read_text())
    meta["preprocess"]["face_crop"] = "blazeface-aligned"
    (aligned / "bundle.json").write_text(json.dumps(meta))
    rng = np.random.default_rng(3)
    tree = tmp_path / "frames"
    for folder, cls in (("positives/positives7", "smile"), ("negatives/negatives7", "no_smile")):
        (tree / cls).mkdir(parents=True)
        for f in sorted((SMILES / folder).glob("*.jpg"))[30:36]:
            scene = make_scene(cv2.imread(str(f), 0), rng).image
            cv2.imwrite(str(tree / cls / f"{f.stem}.png"), scene)
    cv2.imwrite(str(tree / "smile" / "empty.png"), np.full((240, 320), 90, np.uint8))

    def evaluate(*args):
        assert (
            main(["evaluate", *args, "--data", str(tree), "--detector", "blazeface", "--json"]) == 0
        )
        return json.loads(capsys.readouterr().out)

    import tinysmile.train.commands as C

    made, make = [], C._whole_image_detector
    monkeypatch.setattr(
        C,
        "_whole_image_detector",
        lambda name, spec: made.append(spec.face_crop) or make(name, spec),
    )
    res = evaluate(str(default), "--against", str(aligned), "--resamples", "100")
    assert made == ["none", "blazeface-aligned"]  # each model's detector from its own spec
    alone = evaluate(str(aligned))
    a = res["against"]
    assert res["n"] == alone["n"] == 13
    assert a["auc"] == alone["auc"] and a["faces_found"] == alone["faces_found"] == 12 / 13
    assert a["difference"] == pytest.approx(res["auc"] - alone["auc"], abs=1e-12)
    assert res["auc"] == evaluate(str(default))["auc"]
