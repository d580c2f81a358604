"""Training, quantization, predict/evaluate and the bundled default smile model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinysmile.errors import TinysmileError
from tinysmile.train import metrics as M

REPO = Path(__file__).resolve().parents[1]
SMILESMILED = Path(
    os.environ.get("TINYSMILE_SMILESMILED", REPO.parent / "shared" / "datasets" / "smilesmiled")
)
needs_smilesmiled = pytest.mark.skipif(
    not (SMILESMILED / "SMILEs").is_dir(), reason=f"SMILEsmileD not found at {SMILESMILED}"
)
DEFAULT = REPO / "tinysmile" / "models" / "smile_default"


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The CLI in a fresh interpreter that also reports whether TensorFlow got imported."""
    code = (
        "import sys\n"
        "from tinysmile.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "print('TF_IMPORTED=%s' % ('tensorflow' in sys.modules), file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], check=False, capture_output=True, text=True, cwd=REPO
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


# -- metrics (numpy only) ---------------------------------------------------------------


def test_auc_counts_ties_as_half():
    y = np.array([0, 0, 1, 1])
    assert M.roc_auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert M.roc_auc(y, np.array([1, 1, 1, 1])) == 0.5
    assert M.roc_auc(y, np.array([-3, -2, 5, 7])) == 1.0
    assert np.isnan(M.roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_auc_matches_pairwise_definition():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    s = rng.integers(-128, 128, 300)  # int8-like scores: many ties
    pos, neg = s[y == 1], s[y == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert M.roc_auc(y, s) == pytest.approx(wins / (pos.size * neg.size), abs=1e-12)


def test_paired_bootstrap_of_an_auc_difference():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 400)
    good = y + rng.normal(0, 0.5, 400)  # AUC about 0.92
    poor = y + rng.normal(0, 2.0, 400)  # AUC about 0.64
    # Same ranks in every resample: no difference at all, whatever the images drawn.
    same = M.paired_bootstrap_auc(y, good, 3 * good + 7, resamples=300)
    assert (same["difference"], same["low"], same["high"]) == (0.0, 0.0, 0.0)
    assert same["share_not_worse"] == 1.0
    # Perfect against inverted: 1 - 0 in the full set and in every resample.
    flip = M.paired_bootstrap_auc(y, y, -y, resamples=300)
    assert (flip["difference"], flip["low"], flip["high"], flip["share_not_worse"]) == (
        1.0, 1.0, 1.0, 1.0,
    )  # fmt: skip
    assert M.paired_bootstrap_auc(y, -y, y, resamples=300)["share_not_worse"] == 0.0
    # A clearly better model: the interval holds the difference and stays above zero;
    # swapping the two mirrors it.
    ab = M.paired_bootstrap_auc(y, good, poor, resamples=500, seed=1)
    ba = M.paired_bootstrap_auc(y, poor, good, resamples=500, seed=1)
    assert 0 < ab["low"] <= ab["difference"] <= ab["high"] < 1
    assert ab["difference"] == pytest.approx(M.roc_auc(y, good) - M.roc_auc(y, poor))
    assert (ba["low"], ba["high"]) == pytest.approx((-ab["high"], -ab["low"]))
    assert ab == M.paired_bootstrap_auc(y, good, poor, resamples=500, seed=1)
    with pytest.raises(TinysmileError, match="both classes"):
        M.paired_bootstrap_auc(np.ones(10), good[:10], poor[:10])


def test_threshold_for_precision_picks_lowest_reaching_target():
    y = np.array([0, 1, 0, 1, 1, 1])
    s = np.array([1, 2, 3, 4, 5, 6])
    # >=4: 3 tp 0 fp; >=3: 3 tp 1 fp (0.75); >=2: 4 tp 1 fp (0.8); >=1: 4 tp 2 fp.
    assert M.threshold_for_precision(y, s, 0.8) == (2.0, True)
    assert M.threshold_for_precision(y, s, 0.9) == (4.0, True)
    m = M.at_threshold(y, s, 2)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (4, 1, 0, 1)
    assert m["f1"] == pytest.approx(8 / 9)


def test_threshold_falls_back_to_best_f1_when_target_unreachable():
    y = np.array([0, 1, 1, 0])
    s = np.array([4, 3, 2, 1])
    thr, reached = M.threshold_for_precision(y, s, 0.99)
    assert not reached
    assert thr == 2.0  # F1 0.8 (2 tp, 1 fp); >=3 gives 0.5, >=1 gives 0.667


# -- architectures ------------------------------------------------------------------


def test_arch_costs_exact():
    pytest.importorskip("tensorflow")
    from tinysmile.train.arch import build_model, layer_costs, total_macs, total_params

    costs = {c.name: c for c in layer_costs(build_model("embedded3", (64, 64, 1), batch_size=1))}
    # conv1 5x5/2 1->8 on 32x32, conv2 3x3 8->24 on 16x16, conv3 3x3 24->32 on 8x8, dense 512->1.
    assert costs["conv1"].macs == 32 * 32 * 8 * 25
    assert costs["conv2"].macs == 16 * 16 * 24 * 9 * 8
    assert costs["conv3"].macs == 8 * 8 * 32 * 9 * 24
    assert costs["output"].macs == 512
    assert costs["bn1"].macs == 0 and costs["bn1"].params == 32
    assert costs["conv1"].params == 200  # no bias: the batch norm supplies the offset
    assert total_macs(list(costs.values())) == 1_090_048
    assert total_params(list(costs.values())) == 9_441
    kinds = [c.kind for c in costs.values()]
    assert kinds.count("MaxPooling2D") == 3 and kinds.count("BatchNormalization") == 1
    assert kinds.count("Dense") == 1 and kinds.count("Dropout") == 1
    macs = {
        a: total_macs(layer_costs(build_model(a, (64, 64, 1))))
        for a in ("alexnet", "reduced-alexnet")
    }
    assert macs["alexnet"] > macs["reduced-alexnet"] > 1_090_048


def test_unknown_arch_is_a_user_error():
    from tinysmile.train.arch import check_arch

    with pytest.raises(TinysmileError, match="unknown architecture 'resnet'"):
        check_arch("resnet")


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["alexnet", "reduced-alexnet", "embedded3"])
def test_every_arch_converts_to_supported_int8_ops(arch):
    pytest.importorskip("tensorflow")
    from tinysmile.data.preprocess import PreprocessSpec
    from tinysmile.train.arch import build_model
    from tinysmile.train.quantize import SUPPORTED_OPS, check_ops, convert_int8, io_quantization

    spec = PreprocessSpec()
    model = build_model(arch, (64, 64, 1))  # free batch, as trained; export pins it to 1
    rep = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 1), dtype=np.uint8)
    tflite = convert_int8(model, spec, rep)
    ops = check_ops(tflite)
    assert set(ops) <= SUPPORTED_OPS
    # Flatten with a free batch would lower to SHAPE/STRIDED_SLICE/PACK + RESHAPE.
    assert ops.count("RESHAPE") == 1
    assert ops[-1] == "LOGISTIC"
    (in_scale, _), (out_scale, out_zp) = io_quantization(tflite)
    assert in_scale > 0
    # TFLite's int8 LOGISTIC output is fixed at scale 1/256, zero point -128.
    assert (out_scale, out_zp) == (1 / 256, -128)


# -- a short training run on real data -------------------------------------------------


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    if not (SMILESMILED / "SMILEs").is_dir():
        pytest.skip(f"SMILEsmileD not found at {SMILESMILED}")
    from tinysmile.data.importers import import_dataset
    from tinysmile.data.store import Store

    root = tmp_path_factory.mktemp("store")
    with Store(root) as store:
        report = import_dataset("smilesmiled", SMILESMILED, store, limit=800)
    assert report.added + report.duplicates == 800
    return root


@pytest.fixture(scope="module")
def small_run(small_store, tmp_path_factory):
    pytest.importorskip("tensorflow")
    from tinysmile.train.train import train_run

    out = tmp_path_factory.mktemp("run")
    result = train_run(
        small_store,
        "embedded3",
        out,
        epochs=12,
        seed=1,
        batch_size=32,
        learning_rate=3e-3,
        patience=12,
        augment_strength=0.5,
        verbose=0,
        say=lambda *_: None,
    )
    return out, result


@needs_smilesmiled
@pytest.mark.slow
def test_short_training_beats_chance(small_run):
    out, result = small_run
    # ~640 training images, 12 epochs: seeds 1-3 land at 0.95-0.96 on the ~80 validation
    # images; 0.85 is far above chance (0.5) yet leaves room for thread-order jitter in
    # TensorFlow's CPU ops and for the small validation set.
    assert result["val"]["auc"] > 0.85
    assert result["macs"] == 1_090_048
    for name in ("model.keras", "metrics.json", "roc.png", "pr.png", "layers.json", "run.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("auc", "accuracy", "precision", "recall", "f1", "threshold"):
        assert key in metrics["val"]
    assert sum(layer["macs"] for layer in metrics["layers"]) == metrics["macs"]
    spec = json.loads((out / "preprocess.json").read_text())
    assert (spec["height"], spec["width"], spec["face_crop"]) == (64, 64, "none")
    # The store holds SMILEsmileD crops: the run (and so its bundle) says how they are
    # framed around a face box, for a camera runtime to crop the same way.
    from tinysmile.data.preprocess import SOURCE_FRAMING

    assert (spec["crop_margin"], spec["crop_shift_y"]) == SOURCE_FRAMING["smilesmiled"]


def test_the_store_decides_face_crop_and_framing(tmp_path):
    import cv2

    from tinysmile.data.importers import import_dataset
    from tinysmile.data.store import Store
    from tinysmile.train.train import store_spec

    src = tmp_path / "src"
    for label in ("smile", "no_smile"):
        (src / label).mkdir(parents=True)
        cv2.imwrite(str(src / label / "a.png"), np.full((8, 8), 9 if label == "smile" else 99))
    with Store(tmp_path / "folder") as s:
        import_dataset("folder", src, s)
    spec = store_spec(tmp_path / "folder", 48, 40)
    assert (spec.height, spec.width, spec.face_crop, spec.crop_margin) == (48, 40, "none", 0.2)
    with pytest.raises(TinysmileError, match="not a dataset store"):
        store_spec(tmp_path / "nope", 64, 64)
    # A spec of one's own does not excuse a missing store.
    from tinysmile.data.preprocess import PreprocessSpec
    from tinysmile.train.train import train_run

    with pytest.raises(TinysmileError, match="not a dataset store"):
        train_run(tmp_path / "nope", "embedded3", tmp_path / "r", spec=PreprocessSpec())
    assert not (tmp_path / "r").exists()


@needs_smilesmiled
@pytest.mark.slow
def test_quantize_round_trip(small_run, small_store, tmp_path):
    from tinysmile.bundle import load_bundle
    from tinysmile.train.infer import Runner
    from tinysmile.train.quantize import SUPPORTED_OPS, quantize_run

    out, _ = small_run
    report = quantize_run(out, tmp_path / "b", calibration=100, say=lambda *_: None)
    bundle = load_bundle(tmp_path / "b")
    assert bundle.labels == ["no_smile", "smile"]
    assert bundle.meta["task"] == "smile"
    assert bundle.meta["provenance"]["arch"] == "embedded3"
    assert bundle.meta["provenance"]["arch_spec"]["layers"][0]["name"] == "conv1"
    assert bundle.meta["provenance"]["seed"] == 1
    assert (tmp_path / "b" / "MODEL_CARD.md").is_file()
    # The card names its data by source, counts and content, not by the folder it lay in.
    import hashlib

    from tinysmile.data.store import Store

    prov = bundle.meta["provenance"]
    assert prov["data"] == Path(small_store).name and "/" not in prov["run"]
    with Store(small_store, create=False) as st:
        for split in ("train", "val", "test"):
            ids = "\n".join(sorted(x.id for x in st.samples(split=split)))
            assert prov["data_sha256"][split] == hashlib.sha256(ids.encode()).hexdigest()
    card = (tmp_path / "b" / "MODEL_CARD.md").read_text()
    assert str(Path(small_store).resolve()) not in card and str(tmp_path) not in card
    assert prov["data_sha256"]["test"][:16] in card
    assert set(report["ops"]) <= SUPPORTED_OPS
    runner = Runner(bundle)
    assert runner.input["dtype"] == np.int8 and runner.output["dtype"] == np.int8
    # The input spans the pixel range, whatever the calibration images span: each of the
    # 256 levels has its own int8 value (a capture can be turned back into the image).
    assert (runner.in_scale, runner.in_zero_point) == (np.float32(1 / 255), -128)
    # The threshold as probability is the int8 threshold dequantized.
    q = bundle.meta["threshold_int8"]
    assert bundle.threshold == pytest.approx((q + 128) / 256)
    val = report["val"]
    assert val["int8"]["auc"] > 0.85
    # Seeds 1-3 move AUC by under 0.001 and flip at most 1 of ~80 decisions; a bound of
    # 0.02 (and 5 % flips) still catches mis-set input scaling or calibration ranges.
    assert abs(val["auc_drop"]) < 0.02
    assert 0 <= val["flipped_fraction"] < 0.05
    # Sturdiness, recomputed: the val images through the seeded degradations, scored by
    # the bundle's own runner, give the AUC the card reports (pairs counted directly).
    from tinysmile.compiler.api import compile_in_memory
    from tinysmile.data.augment import degrade
    from tinysmile.train.dataset import load_samples, store_samples

    arrays = load_samples(runner.spec, store_samples(small_store, "val"))
    pixels, names = degrade(arrays.pixels, 0)
    assert len(set(names)) > 3
    degraded = _pairwise_auc(runner.scores(pixels), arrays.labels)
    assert val["degraded"]["auc"] == pytest.approx(degraded, abs=1e-12)
    assert val["degraded"]["auc_drop"] == pytest.approx(val["int8"]["auc"] - degraded)
    # The compiler's figures for the bundle, in its metadata and its card.
    rep = compile_in_memory(tmp_path / "b" / "model.tflite").report
    assert bundle.meta["device"] == {
        "arena_bytes": rep["arena_bytes"],
        "weights_bytes": rep["weights_bytes"],
    }
    card = (tmp_path / "b" / "MODEL_CARD.md").read_text()
    assert "## Sturdiness" in card and f"{degraded:.4f}" in card
    assert f"{rep['arena_bytes']:,} B of activation arena" in card


@needs_smilesmiled
@pytest.mark.slow
def test_train_and_serve_preprocessing_give_the_same_bytes(small_run, small_store, tmp_path):
    from tinysmile.data.preprocess import PreprocessSpec, load_image, preprocess, to_float, to_int8
    from tinysmile.train.dataset import load_samples, store_samples
    from tinysmile.train.infer import Runner
    from tinysmile.train.quantize import quantize_run
    from tinysmile.train.train import load_run

    out, _ = small_run
    quantize_run(out, tmp_path / "b", calibration=50, say=lambda *_: None)
    _, _, train_spec = load_run(out)
    runner = Runner(tmp_path / "b")
    assert runner.spec == train_spec
    samples = store_samples(small_store, "test")[:5]
    train_pixels = load_samples(train_spec, samples).pixels
    for sample, trained in zip(samples, train_pixels):
        served = runner.predict_file(sample.path)
        serve_pixels = preprocess(runner.spec, load_image(sample.path))
        np.testing.assert_array_equal(serve_pixels, trained)
        np.testing.assert_array_equal(
            runner.quantize_input(serve_pixels),
            to_int8(train_spec, trained, runner.in_scale, runner.in_zero_point),
        )
        # Bytes, not just values: what Keras trained on is float32 of the same pixels.
        assert to_float(
            PreprocessSpec.from_dict(runner.bundle.preprocess), serve_pixels
        ).tobytes() == (to_float(train_spec, trained).tobytes())
        assert served["output_int8"] == int(runner.run_int8(runner.quantize_input(trained))[0])


def test_quantize_refuses_a_folder_that_is_not_a_run(tmp_path):
    from tinysmile.train.train import load_run

    with pytest.raises(TinysmileError, match="not a training run"):
        load_run(tmp_path)


def test_train_refuses_a_missing_store(tmp_path):
    proc = run_cli(
        "train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r"), check=False
    )
    assert proc.returncode == 2
    assert "not a dataset store" in proc.stderr
    assert "Traceback" not in proc.stderr


@needs_smilesmiled
@pytest.mark.slow
def test_restarts_into_an_earlier_runs_folder_leave_only_their_own(tmp_path, monkeypatch):
    # train_run stood in for by a stub: what is tested is the restarts' folders.
    from tinysmile.train import train as T

    def fake_run(data, arch, out, *, seed, say, **kw):
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / T.RUN_FILE).write_text(json.dumps({"seed": seed}))
        return {"val": {"auc": 0.5 + seed / 100}}

    monkeypatch.setattr(T, "train_run", fake_run)
    said: list[str] = []
    out = tmp_path / "run"
    T.train_restarts("store", "embedded3", out, 4, seed=0, say=said.append)
    assert sorted(p.name for p in (out / "restarts").iterdir()) == [f"seed-{s}" for s in range(4)]
    assert not any("removing" in line for line in said)
    T.train_restarts("store", "embedded3", out, 2, seed=1, say=said.append)
    assert sorted(p.name for p in (out / "restarts").iterdir()) == ["seed-1", "seed-2"]
    assert json.loads((out / "run.json").read_text())["restarts"]["chosen_seed"] == 2
    assert any("seed-0, seed-3" in line for line in said)
    # A single run into the folder: its model is no restart's, so none is left.
    T.train_restarts("store", "embedded3", out, 1, seed=7, say=said.append)
    assert not (out / "restarts").exists()
    assert json.loads((out / "run.json").read_text()) == {"seed": 7}


def test_restarts_keep_the_seed_best_on_validation(small_store, tmp_path):
    out = tmp_path / "run"
    proc = run_cli(
        "train",
        "--data",
        str(small_store),
        "--out",
        str(out),
        "--restarts",
        "2",
        "--seed",
        "3",
        "--epochs",
        "2",
        "--limit",
        "160",
        "--size",
        "32",
    )
    per_seed = {
        s: json.loads((out / "restarts" / f"seed-{s}" / "metrics.json").read_text())["val"]["auc"]
        for s in (3, 4)
    }
    chosen = 3 if per_seed[3] >= per_seed[4] else 4
    info = json.loads((out / "run.json").read_text())
    assert info["seed"] == chosen
    assert info["restarts"]["chosen_seed"] == chosen
    assert info["restarts"]["val_auc"] == {str(s): auc for s, auc in per_seed.items()}
    kept = out / "restarts" / f"seed-{chosen}"
    for name in ("model.keras", "metrics.json", "preprocess.json", "arch.json"):
        assert (out / name).read_bytes() == (kept / name).read_bytes(), name
    assert f"val AUC {per_seed[chosen]:.4f}" in proc.stdout
    assert f"kept seed {chosen}" in proc.stderr
    # The model card names the kept seed and every restart's val AUC.
    from tinysmile.train.quantize import _restarts

    (line,) = _restarts({"restarts": info["restarts"]})
    assert f"Seed {chosen} was kept of 2 restarts" in line
    assert all(f"seed {s}: {auc:.4f}" in line for s, auc in per_seed.items())
    # Its training time counts every restart, not the kept run's alone.
    from tinysmile.train.quantize import _targets

    prov = {"restarts": info["restarts"], "train_total_seconds": 1.0, "cpu_count": 2}
    rows = _targets({"macs": 1, "provenance": prov})
    (row,) = [r for r in rows if r.startswith("| training time")]
    assert row.startswith("| training time (2 restarts, 2 CPU cores) |")
    assert f"| {info['restarts']['seconds'] / 60:.1f} min |" in row

    bad = run_cli(
        "train",
        "--data",
        str(small_store),
        "--out",
        str(tmp_path / "r"),
        "--restarts",
        "0",
        check=False,
    )
    assert bad.returncode == 2 and "--restarts must be >= 1" in bad.stderr
    assert not (tmp_path / "r").exists()


def test_a_run_on_given_splits_trains_and_is_scored_on_those_alone(small_store, tmp_path):
    """Cross-validation (bench/bench_accuracy.py) trains on folds of its own: the run uses
    exactly the samples it is given for each split, says so, and is refused the store's
    val and test splits, which its training data may come from."""
    pytest.importorskip("tensorflow")
    from tinysmile.train.dataset import store_samples
    from tinysmile.train.quantize import quantize_run
    from tinysmile.train.train import train_run

    everything = sorted(store_samples(small_store, None), key=lambda s: s.id)
    # Test and val drawn from the store's train split: not what the store would use.
    ours = [s for s in everything if s.split == "train"]
    splits = {"test": ours[:60], "val": ours[60:120], "train": ours[120:]}
    assert len(splits["train"]) > 400
    run = tmp_path / "run"
    result = train_run(
        small_store,
        "embedded3",
        run,
        epochs=1,
        seed=0,
        verbose=0,
        say=lambda *_: None,
        split_samples=splits,
    )
    info = json.loads((run / "run.json").read_text())
    assert info["custom_split"] is True
    assert (info["train_samples"], info["val_samples"]) == (len(splits["train"]), 60)
    assert (result["val"]["n"], result["test"]["n"]) == (60, 60)
    assert result["test"]["positives"] == sum(s.label for s in splits["test"])

    with pytest.raises(TinysmileError, match="split of its own"):
        quantize_run(run, tmp_path / "refused", say=lambda *_: None)
    assert not (tmp_path / "refused").exists()

    report = quantize_run(run, tmp_path / "bundle", say=lambda *_: None, split_samples=splits)
    for split in ("val", "test"):
        assert report[split]["int8"]["n"] == 60
        assert report[split]["int8"]["positives"] == sum(s.label for s in splits[split])
    meta = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    assert "cross-validation" in meta["provenance"]["split"]


@needs_smilesmiled
def test_a_teacher_mixes_its_probabilities_into_the_targets(small_run, small_store, tmp_path):
    """Distillation: each target is `distill` times the teacher's probability for the image
    the student sees (resized to the teacher's input) plus the rest times the label; the
    run records its teacher; a folder that is not a run, or a weight outside (0, 1], is
    refused."""
    import keras

    from tinysmile.data.pixels import resize_area
    from tinysmile.data.preprocess import to_float
    from tinysmile.train.quantize import quantize_run
    from tinysmile.train.train import Teacher, store_spec, train_run

    teacher_dir, _ = small_run
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (6, 48, 48, 1), dtype=np.uint8)
    labels = np.array([0, 1, 0, 1, 1, 0], dtype=np.float32)
    teacher = Teacher(teacher_dir, 0.25)
    got = teacher.targets(pixels, labels)

    model = keras.models.load_model(teacher_dir / "model.keras", compile=False)
    # The teacher sees the image through the one integer resize every crop takes (its own
    # test, tests/test_vision.py, holds it to an independent float computation).
    big = np.stack([resize_area(p[:, :, 0], 64, 64) for p in pixels])
    probs = model.predict(to_float(teacher.spec, big[..., None]), verbose=0).reshape(-1)
    assert not np.allclose(probs, labels, atol=0.05)  # the teacher's part is visible
    np.testing.assert_allclose(got, 0.75 * labels + 0.25 * probs, rtol=0, atol=1e-5)

    run = tmp_path / "student"
    train_run(
        small_store,
        "embedded3",
        run,
        epochs=1,
        limit=200,
        spec=store_spec(small_store, 48, 48),
        teacher=teacher_dir,
        distill=0.25,
        verbose=0,
        say=lambda *_: None,
    )
    info = json.loads((run / "run.json").read_text())
    assert info["teacher"] == {
        "run": str(teacher_dir.resolve()),
        "weight": 0.25,
        "arch": "embedded3",
    }
    # The bundle's provenance and card say so.
    quantize_run(run, tmp_path / "bundle", say=lambda *_: None)
    meta = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    assert meta["provenance"]["teacher"] == info["teacher"]
    card = (tmp_path / "bundle" / "MODEL_CARD.md").read_text()
    assert f"Distilled from `{teacher_dir.resolve()}` (embedded3)" in card
    assert "0.25 times the teacher's probability plus 0.75 times the label" in card
    with pytest.raises(TinysmileError, match="not a training run to learn from"):
        Teacher(tmp_path, 0.5)
    proc = run_cli(
        "train",
        "--data",
        str(small_store),
        "--out",
        str(tmp_path / "refused"),
        "--teacher",
        str(tmp_path / "student" / "roc.png"),
        check=False,
    )
    assert proc.returncode == 2 and "not a training run to learn from" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "refused").exists()
    with pytest.raises(TinysmileError, match=r"--distill must be in \(0, 1\]"):
        Teacher(teacher_dir, 0.0)


def _bench_accuracy():
    import importlib.util

    path = REPO / "bench" / "bench_accuracy.py"
    spec = importlib.util.spec_from_file_location("bench_accuracy", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_the_accuracy_benchmarks_last_fold_is_the_stores_split():
    """bench/bench_accuracy.py's folds are tenths of the hash space: testing fold 9 with
    fold 8 validating must be the store's own split, as its tables say."""
    from tinysmile.data.store import split_for_hash

    bench = _bench_accuracy()
    rng = np.random.default_rng(0)
    ids = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(5000)]
    expect = {"test": {9}, "val": {8}, "train": set(range(8))}
    seen = {"test": set(), "val": set(), "train": set()}
    for sample_id in ids:
        seen[split_for_hash(sample_id)].add(bench.fold_of(sample_id))
    assert seen == expect
    assert bench.parse_folds("0-2,9") == [0, 1, 2, 9]


@needs_smilesmiled
def test_the_accuracy_benchmarks_students_learn_from_the_same_folds_teacher(
    small_store, tmp_path, monkeypatch, capsys
):
    """bench_accuracy --student: each fold's student is given that fold's teacher, after
    it; results are reused for the same setting only, and a teacher's only with its model.
    The training itself is stood in for (it is tested above): what is tested is the
    bookkeeping."""
    bench = _bench_accuracy()
    calls = []

    def fake_fold(store, arch, fold, samples, args, folder, key, teacher=None):
        calls.append((arch["name"], fold, teacher, args.distill))
        if teacher is not None:
            assert (teacher / "model.keras").is_file()  # the teacher came first
        (folder / "model.keras").write_text("model")
        r = {**key, "arch": arch["name"], "fold": fold, "val_fold": (fold - 1) % 10}
        r.update(n={"test": 1}, macs=1, test_auc_int8=0.9, test_auc_degraded=0.8, train_seconds=1)
        (folder / "result.json").write_text(json.dumps(r))
        return r

    monkeypatch.setattr(bench, "run_fold", fake_fold)
    out = tmp_path / "bench"

    def run(*extra):
        calls.clear()
        argv = ["bench_accuracy", "--data", str(small_store), "--out", str(out), "--json"]
        monkeypatch.setattr("sys.argv", argv + ["--folds", "0-1", *extra])
        bench.main()
        return json.loads(capsys.readouterr().out)

    small = str(REPO / "tinysmile" / "models" / "smile_default")
    table = run("--arch", "embedded3", "--student", small)
    student = [n for n in table if n.endswith("(from embedded3)")]
    assert len(table) == 2 and len(student) == 1
    teachers = {c[1]: c[2] for c in calls if c[2] is not None}
    assert sorted(teachers) == [0, 1]
    assert [c[:2] for c in calls] == [("embedded3", 0), ("embedded3", 1)] + [
        (calls[2][0], 0),
        (calls[2][0], 1),
    ]
    assert calls[2][0] != "embedded3" and [c[3] for c in calls[2:]] == [0.5, 0.5]
    for fold, folder in teachers.items():
        assert folder.name == f"fold{fold}" and folder.parent.parent.name == "embedded3"
    setting = ("arch_key", "data", "seed", "epochs", "patience")
    assert table[student[0]][0]["teacher"] == {k: table["embedded3"][0][k] for k in setting}

    assert run("--arch", "embedded3", "--student", small) and calls == []  # all reused
    run("--arch", "embedded3", "--student", small, "--distill", "0.25")
    assert [(c[1], c[3]) for c in calls] == [(0, 0.25), (1, 0.25)]  # the students only
    # A teacher's result without its model is trained again; its students' stand.
    (teachers[1] / "model.keras").unlink()
    run("--arch", "embedded3", "--student", small, "--distill", "0.25")
    assert [c[:2] for c in calls] == [("embedded3", 1)]
    with pytest.raises(SystemExit, match="not one of the --arch"):
        run("--arch", "embedded3", "--student", small, "--teacher", "alexnet")
    with pytest.raises(SystemExit, match="name one"):
        run("--arch", "embedded3", "--teacher", "embedded3")


# -- the bundled default ---------------------------------------------------------------


def test_default_bundle_meets_its_card():
    from tinysmile.bundle import load_bundle
    from tinysmile.train.infer import op_names
    from tinysmile.train.quantize import SUPPORTED_OPS

    bundle = load_bundle()
    assert bundle.path == DEFAULT
    data = bundle.model_bytes()
    assert 5_000 < len(data) < 100_000
    assert set(op_names(data)) <= SUPPORTED_OPS
    from tinysmile.train.arch import arch_macs
    from tinysmile.train.quantize import TARGET_DEGRADED_DROP, TARGET_MACS

    meta = bundle.meta
    assert meta["model_sha256"] == bundle.model_hash()
    # Issue 12: at most half embedded3's MACs, found by the search from embedded3.
    spec = meta["provenance"]["arch_spec"]
    assert meta["provenance"]["arch"] == spec["name"]
    assert arch_macs(spec) == meta["macs"] <= TARGET_MACS == 1_090_048 // 2
    path = meta["search"]["path"]
    assert path[0]["step"] == "baseline" and path[0]["macs"] == 1_090_048
    assert path[-1]["macs"] == meta["macs"] and len(path) >= 2
    assert meta["metrics"]["test"]["degraded"]["auc_drop"] <= TARGET_DEGRADED_DROP
    assert meta["device"]["instructions"] > 0 and meta["device"]["board"] == "qemu-cortex-m4"
    card = (DEFAULT / "MODEL_CARD.md").read_text()
    # The shipped card is the one its bundle's metadata gives, not an older wording.
    from tinysmile.train.quantize import model_card

    assert card == model_card(meta)
    assert "scripts/train_default.sh" in card and "## Search" in card
    # Its data named by content, not by the trainer's folders (issue 28).
    assert set(meta["provenance"]["data_sha256"]) == {"train", "val", "test"}
    assert not any(p in card for p in ("/work/", "/root/", "/home/", "/tmp/"))
    assert f"{meta['macs']:,}" in card and f"{meta['device']['instructions']:,}" in card


def _pairwise_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    # The definition itself: the share of (smile, no smile) pairs ranked right, ties half.
    pos, neg = scores[labels == 1][:, None], scores[labels == 0][None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


@needs_smilesmiled
def test_default_bundle_auc_recomputed_from_its_outputs():
    # The card's test AUC, recomputed here from the int8 model's own outputs on the
    # SMILEsmileD images of the test split (80/10/10 by content hash), not read back.
    import hashlib

    from tinysmile.compiler.oracle import litert_reference
    from tinysmile.data.preprocess import PreprocessSpec, preprocess_files, to_int8
    from tinysmile.data.store import split_for_hash

    meta = json.loads((DEFAULT / "bundle.json").read_text())
    files: dict[str, tuple[Path, set[int]]] = {}
    for label, folder in ((1, "positives/positives7"), (0, "negatives/negatives7")):
        for path in sorted((SMILESMILED / "SMILEs" / folder).glob("*.jpg")):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            files.setdefault(digest, (path, set()))[1].add(label)
    # Images filed under both labels carry no label: left out (the store drops them too).
    test = [
        (path, labels.pop())
        for digest, (path, labels) in sorted(files.items())
        if len(labels) == 1 and split_for_hash(digest) == "test"
    ]
    assert len(test) > 1000
    spec = PreprocessSpec.from_dict(meta["preprocess"])
    pixels = preprocess_files(spec, [p for p, _ in test])
    model = (DEFAULT / "model.tflite").read_bytes()
    from tinysmile.compiler.reader import parse_model

    x_t = parse_model(model).input
    x = to_int8(spec, pixels, x_t.scale, x_t.zero_point)
    scores = litert_reference(model, x).reshape(len(test), -1)[:, 0].astype(np.int64)
    auc = _pairwise_auc(scores, np.array([label for _, label in test]))
    print(f"default bundle: int8 test AUC {auc:.4f} on {len(test)} SMILEsmileD images")
    assert auc >= 0.955, auc
    # Within 0.002 of the card's figure: the card's store may break a tie between
    # duplicate files differently, which moves a few images across splits or labels.
    assert abs(auc - meta["metrics"]["test"]["int8"]["auc"]) <= 0.002, auc


@needs_smilesmiled
def test_predict_cli_on_default_without_tensorflow():
    pos = sorted((SMILESMILED / "SMILEs/positives/positives7").glob("*.jpg"))[:3]
    neg = sorted((SMILESMILED / "SMILEs/negatives/negatives7").glob("*.jpg"))[:3]
    proc = run_cli("predict", str(DEFAULT), *map(str, pos + neg), "--json")
    assert "TF_IMPORTED=False" in proc.stderr
    doc = json.loads(proc.stdout)
    preds = doc["predictions"]
    assert [Path(p["image"]).name for p in preds] == [p.name for p in pos + neg]
    for p in preds:
        assert -128 <= p["output_int8"] <= 127
        assert p["probability"] == (p["output_int8"] + 128) / 256
        assert p["smile"] == (p["output_int8"] >= p["threshold_int8"])
        assert p["label"] == ("smile" if p["smile"] else "no_smile")
    text = run_cli("predict", str(DEFAULT), str(pos[0])).stdout
    assert text.startswith(f"{pos[0]}: ")


@needs_smilesmiled
def test_evaluate_cli_on_default_store_and_folder(small_store, tmp_path):
    proc = run_cli("evaluate", str(DEFAULT), "--data", str(small_store), "--json")
    assert "TF_IMPORTED=False" in proc.stderr
    res = json.loads(proc.stdout)
    assert res["split"] == "test"
    assert res["tp"] + res["fp"] + res["fn"] + res["tn"] == res["n"]
    assert res["n"] > 50
    # Held-out images (the store's test split is the same hash split the default never
    # trained on); the card claims >= 0.95 on the full test split, 0.9 leaves room for
    # this ~80-image subset's sampling noise.
    assert res["auc"] > 0.9

    # A class-per-folder tree built from the same test images gives the same numbers.
    from tinysmile.train.dataset import store_samples

    for s in store_samples(small_store, "test"):
        d = tmp_path / ("smile" if s.label == 1 else "no_smile")
        d.mkdir(exist_ok=True)
        (d / f"{s.id}{s.path.suffix}").symlink_to(s.path)
    folder = json.loads(run_cli("evaluate", str(DEFAULT), "--data", str(tmp_path), "--json").stdout)
    for key in ("n", "positives", "tp", "fp", "fn", "tn", "auc"):
        assert folder[key] == res[key], key
    text = run_cli("evaluate", str(DEFAULT), "--data", str(small_store)).stdout
    assert "AUC" in text


@needs_smilesmiled
def test_evaluate_against_another_model(small_store, tmp_path):
    """--against scores the same images with the other bundle. Against itself (a copy) the
    difference is exactly zero in every resample; a missing bundle is a one-line error."""
    import shutil

    copy = shutil.copytree(DEFAULT, tmp_path / "copy")
    res = json.loads(
        run_cli(
            "evaluate", str(DEFAULT), "--data", str(small_store), "--against", str(copy),
            "--resamples", "200", "--json",
        ).stdout
    )  # fmt: skip
    a = res["against"]
    assert a["auc"] == res["auc"] and a["resamples"] == 200
    assert (a["difference"], a["low"], a["high"], a["share_not_worse"]) == (0.0, 0.0, 0.0, 1.0)
    text = run_cli(
        "evaluate", str(DEFAULT), "--data", str(small_store), "--against", str(copy)
    ).stdout
    assert "difference +0.0000, 95 % interval +0.0000 to +0.0000" in text
    bad = run_cli(
        "evaluate", str(DEFAULT), "--data", str(small_store), "--against", str(tmp_path / "no"),
        check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "no such model file or bundle folder" in bad.stderr


@needs_smilesmiled
@pytest.mark.slow
def test_evaluate_against_a_model_of_another_input_size(small_run, small_store, tmp_path):
    """The 48x48 default against the 64x64 embedded3 of the short run: each is scored
    through its own preprocessing, so each AUC is the one `evaluate` gives it alone."""
    from tinysmile.train.quantize import quantize_run

    quantize_run(small_run[0], tmp_path / "b", calibration=100, say=lambda *_: None)
    other = str(tmp_path / "b")

    def auc_of(*args):
        return json.loads(run_cli("evaluate", *args, "--data", str(small_store), "--json").stdout)

    res = auc_of(str(DEFAULT), "--against", other, "--resamples", "300")
    a = res["against"]
    assert res["auc"] == auc_of(str(DEFAULT))["auc"]
    assert a["auc"] == auc_of(other)["auc"] != res["auc"]
    assert a["difference"] == pytest.approx(res["auc"] - a["auc"], abs=1e-12)
    assert a["low"] <= a["difference"] <= a["high"] and a["low"] < a["high"]


def test_evaluate_refuses_a_missing_data_path(tmp_path):
    proc = run_cli("evaluate", str(DEFAULT), "--data", str(tmp_path / "nope"), check=False)
    assert proc.returncode == 2
    assert "no such store or folder" in proc.stderr


@needs_smilesmiled
@pytest.mark.slow
def test_default_card_metrics_reproduce_with_evaluate(tmp_path):
    """`tinysmile evaluate` (LiteRT, serve-time preprocessing) on the full test split gives
    exactly the confusion counts `tinysmile quantize` wrote into the bundle."""
    from tinysmile.bundle import load_bundle
    from tinysmile.data.importers import import_dataset
    from tinysmile.data.store import Store

    with Store(tmp_path / "store") as store:
        import_dataset("smilesmiled", SMILESMILED, store)
    res = json.loads(
        run_cli("evaluate", str(DEFAULT), "--data", str(tmp_path / "store"), "--json").stdout
    )
    stated = load_bundle(DEFAULT).meta["metrics"]["test"]["int8"]
    for key in ("n", "positives", "tp", "fp", "fn", "tn"):
        assert res[key] == stated[key], key
    assert res["auc"] == pytest.approx(stated["auc"], abs=1e-12)
    # Issue 12 asks for at least the embedded3 default's int8 test AUC (0.9596); the
    # search's answer reaches 0.9593, and its card says the target is not met. What is
    # held here: 0.955 (issue 4 asked for 0.95), and no more than 0.01 lost when every
    # image goes through one serving-skew degradation.
    from tinysmile.train.quantize import TARGET_DEGRADED_DROP

    assert res["auc"] >= 0.955
    deg = json.loads(
        run_cli(
            "evaluate", str(DEFAULT), "--data", str(tmp_path / "store"), "--degrade", "--json"
        ).stdout
    )["degraded"]
    assert deg["auc"] == pytest.approx(
        load_bundle(DEFAULT).meta["metrics"]["test"]["degraded"]["auc"], abs=1e-12
    )
    assert res["auc"] - deg["auc"] <= TARGET_DEGRADED_DROP


@pytest.mark.slow
def test_the_int8_input_spans_every_pixel_level():
    # Calibration images between levels 10 and 200 alone would give the input that range;
    # one of them stretched to the full range gives every level its own int8 value.
    pytest.importorskip("tensorflow")
    import keras

    from tinysmile.compiler.reader import parse_model
    from tinysmile.data.preprocess import PreprocessSpec
    from tinysmile.train.quantize import convert_int8, full_range

    inputs = keras.Input((8, 8, 1), batch_size=1)
    x = keras.layers.Conv2D(2, 3, activation="relu")(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    rep = np.random.default_rng(0).integers(10, 201, (16, 8, 8, 1), dtype=np.uint8)
    stretched = full_range(rep[:1])
    assert stretched.min() == 0 and stretched.max() == 255
    spec = PreprocessSpec(height=8, width=8)

    def input_quant(pixels):
        t = parse_model(convert_int8(model, spec, pixels)).input
        return float(t.scale), int(t.zero_point)

    assert input_quant(np.concatenate([rep, stretched])) == (float(np.float32(1 / 255)), -128)
    # Without it: the range [0, 200/255] (TFLite's ranges always hold 0), 0.78 of a level
    # per int8 step, and 55 levels at the top all on 127.
    narrow = input_quant(rep)
    assert narrow[0] == pytest.approx(200 / 255 / 255, rel=1e-3) and narrow[1] == -128


@pytest.mark.slow
def test_check_ops_names_an_unsupported_op():
    pytest.importorskip("tensorflow")
    import keras

    from tinysmile.data.preprocess import PreprocessSpec
    from tinysmile.train.quantize import check_ops, convert_int8

    inputs = keras.Input((8, 8, 1), batch_size=1)
    x = keras.layers.Conv2D(2, 3, activation="tanh")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    rep = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 1), dtype=np.uint8)
    tflite = convert_int8(model, PreprocessSpec(height=8, width=8), rep)
    with pytest.raises(TinysmileError, match=r"does not support: TANH \(op 1\)"):
        check_ops(tflite)


@needs_smilesmiled
def test_degrade_gives_each_image_one_seeded_degradation():
    from tinysmile.data.augment import DEGRADATIONS, degrade
    from tinysmile.data.preprocess import PreprocessSpec, preprocess_files

    files = sorted((SMILESMILED / "SMILEs/positives/positives7").glob("*.jpg"))[:60]
    meta = json.loads((DEFAULT / "bundle.json").read_text())
    x = preprocess_files(PreprocessSpec.from_dict(meta["preprocess"]), files)
    a, names = degrade(x, seed=3)
    b, again = degrade(x, seed=3)
    c, _ = degrade(x, seed=4)
    np.testing.assert_array_equal(a, b)
    assert names == again and len(names) == len(x)
    assert not np.array_equal(a, c)
    assert set(names) <= set(DEGRADATIONS) and len(set(names)) >= 5
    assert a.shape == x.shape and a.dtype == x.dtype
    # Nearly every image is changed (a misframing can draw a zero shift now and then).
    changed = [not np.array_equal(a[i], x[i]) for i in range(len(x))]
    assert sum(changed) >= 0.9 * len(x)


def test_evaluate_degrade_reports_the_drop(small_store):
    from tinysmile.data.augment import degrade
    from tinysmile.train.dataset import load_data
    from tinysmile.train.infer import Runner

    clean = json.loads(
        run_cli("evaluate", str(DEFAULT), "--data", str(small_store), "--json").stdout
    )
    proc = run_cli(
        "evaluate", str(DEFAULT), "--data", str(small_store), "--degrade", "--seed", "5", "--json"
    )
    assert "TF_IMPORTED=False" in proc.stderr
    res = json.loads(proc.stdout)
    for key in ("n", "tp", "fp", "fn", "tn", "auc"):
        assert res[key] == clean[key], key  # the clean figures are unchanged by --degrade
    d = res["degraded"]
    # The degraded AUC, recomputed here from the model's scores on the degraded images with
    # the pairwise definition.
    runner = Runner(DEFAULT)
    arrays = load_data(runner.spec, small_store, "test")
    pixels, names = degrade(arrays.pixels, 5)
    scores = runner.scores(pixels)
    auc = _pairwise_auc(scores, arrays.labels)
    assert d["seed"] == 5
    assert abs(d["auc"] - auc) < 1e-12
    assert abs(d["auc_drop"] - (res["auc"] - auc)) < 1e-12
    assert sum(k["n"] for k in d["by_degradation"].values()) <= res["n"]
    assert set(d["by_degradation"]) <= set(names)
    text = run_cli("evaluate", str(DEFAULT), "--data", str(small_store), "--degrade").stdout
    assert "degraded (one per image, seed 0): AUC" in text
