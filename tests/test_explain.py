"""`tinysmile explain`: occlusion maps on the int8 model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinysmile.cli import main

REPO = Path(__file__).resolve().parents[1]
SMILES = REPO.parent / "shared" / "datasets" / "smilesmiled" / "SMILEs"
pytestmark = pytest.mark.skipif(not SMILES.is_dir(), reason=f"SMILEsmileD not found at {SMILES}")


def _crops(n: int) -> list[Path]:
    pos = sorted((SMILES / "positives" / "positives7").glob("*.jpg"))[:n]
    neg = sorted((SMILES / "negatives" / "negatives7").glob("*.jpg"))[:n]
    return pos + neg


def test_a_pixels_evidence_is_the_mean_fall_over_the_squares_covering_it():
    """Recomputed for a few pixels from their own covering squares: each square (the last
    row and column of squares included) grey-filled, run, and the falls averaged."""
    from tinysmile.data.preprocess import load_image, preprocess
    from tinysmile.train.explain import occlusion_map
    from tinysmile.train.infer import Runner

    runner = Runner(None)
    pixels = preprocess(runner.spec, load_image(_crops(1)[0]))
    m = occlusion_map(runner, pixels, patch=8, stride=5)
    assert m.shape == (48, 48) and m.dtype == np.float32

    def prob(p: np.ndarray) -> float:
        return float(runner.dequantize(runner.run_int8(runner.quantize_input(p))[0]))

    base, fill = prob(pixels), np.uint8(round(float(pixels.mean())))
    starts = [0, 5, 10, 15, 20, 25, 30, 35, 40]  # stride 5 up to 48 - 8, which is 40
    for py, px in ((0, 0), (24, 30), (47, 47), (33, 9)):
        falls = []
        for y in starts:
            for x in starts:
                if y <= py < y + 8 and x <= px < x + 8:
                    covered = pixels.copy()
                    covered[y : y + 8, x : x + 8] = fill
                    falls.append(base - prob(covered))
        assert falls and m[py, px] == pytest.approx(np.mean(falls), abs=1e-6)
    assert np.abs(m).max() > 0  # the model does look somewhere


def test_explain_writes_maps_and_the_mean_map_per_class(tmp_path, capsys):
    from tinysmile.bundle import default_bundle_path
    from tinysmile.train.dataset import load_samples, store_samples
    from tinysmile.train.explain import occlusion_map
    from tinysmile.train.infer import Runner

    src = tmp_path / "faces"
    for cls, files in (("smile", _crops(3)[:3]), ("no_smile", _crops(3)[3:])):
        (src / cls).mkdir(parents=True)
        for f in files:
            shutil.copy(f, src / cls / f.name)
    store = tmp_path / "store"
    assert main(["data", "import", "folder", str(src), "--store", str(store)]) == 0
    capsys.readouterr()
    images = [str(p) for p in _crops(1)]
    model = str(default_bundle_path())
    args = ["explain", model, *images, "--out", str(tmp_path / "out"), "--json"]
    assert main([*args, "--data", str(store), "--split", "train", "--limit", "50"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["method"] == "occlusion on the int8 model"
    assert [r["image"] for r in got["images"]] == images
    out = tmp_path / "out"
    import cv2

    for img in images:
        stem = Path(img).stem
        assert cv2.imread(str(out / f"{stem}_map.png")).shape == (288, 288, 3)
        assert cv2.imread(str(out / f"{stem}_crop.png"), cv2.IMREAD_UNCHANGED).shape == (48, 48)
    # The mean map per class is the mean of the class's own maps.
    runner = Runner(None)
    samples = store_samples(store, "train")
    arrays = load_samples(runner.spec, samples)
    for k, label in enumerate(runner.labels):
        mine = [occlusion_map(runner, p) for p, y in zip(arrays.pixels, arrays.labels) if y == k]
        if not mine:
            assert label not in got["classes"]
            continue
        assert got["classes"][label]["images"] == len(mine)
        saved = np.load(out / f"mean_{label}.npy")
        np.testing.assert_allclose(saved, np.mean(mine, axis=0), atol=1e-6)
    assert main(["explain", model, "--out", str(tmp_path / "o2")]) == 2  # nothing to explain
