"""The 3-class attitude model (issue 28): the multi-class metrics by hand, a tiny softmax
model trained on a FER2013-like folder, its int8 SOFTMAX, predict/evaluate, bit-exact on
the emulated board, the Pi's attitude display and LED, and attitude ratings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tinysmile.cli import main
from tinysmile.errors import TinysmileError
from tinysmile.train import metrics as M

REPO = Path(__file__).resolve().parents[1]
LABELS = ["negative", "neutral", "positive"]
# Synthetic FER2013: each emotion a brightness, so a tiny net learns attitude in an epoch
# (happy bright, neutral mid-grey, the five negative ones dark).
BRIGHTNESS = {
    "happy": 200,
    "neutral": 128,
    "angry": 50,
    "disgust": 55,
    "fear": 45,
    "sad": 60,
    "surprise": 40,
}
TINY_ARCH = {
    "name": "tiny-attitude",
    "input": {"height": 48, "width": 48},
    "layers": [
        {"type": "conv", "name": "conv1", "filters": 4, "kernel": 3, "stride": 4},
        {"type": "relu", "name": "relu1"},
        {"type": "max_pool", "name": "pool1", "size": 4},
        {"type": "flatten", "name": "flatten"},
        {"type": "dense", "name": "output", "units": 3, "activation": "softmax"},
    ],
}

needs_emulator = pytest.mark.skipif(
    not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")),
    reason="needs qemu-system-arm and arm-none-eabi-gcc (scripts/setup.sh installs them)",
)


# -- metrics against hand-computed values --------------------------------------------


def test_multiclass_metrics_of_a_small_confusion_by_hand():
    # rows true, columns predicted
    cm = np.array([[5, 1, 0], [2, 3, 1], [0, 1, 7]])
    r = M.from_confusion(cm)
    n = 20
    assert r["n"] == n
    assert r["accuracy"] == pytest.approx(15 / 20, abs=1e-12)
    # precision per class: 5/7, 3/5, 7/8; recall: 5/6, 3/6, 7/8
    p = [5 / 7, 3 / 5, 7 / 8]
    rc = [5 / 6, 3 / 6, 7 / 8]
    f1 = [2 * a * b / (a + b) for a, b in zip(p, rc)]
    assert r["precision"] == pytest.approx(p, abs=1e-12)
    assert r["recall"] == pytest.approx(rc, abs=1e-12)
    assert r["macro_f1"] == pytest.approx(sum(f1) / 3, abs=1e-12)
    # kappa: chance agreement from the marginals, rows (6, 6, 8), columns (7, 5, 8)
    pe = (6 * 7 + 6 * 5 + 8 * 8) / 400  # 136 / 400 = 0.34
    assert r["kappa"] == pytest.approx((0.75 - pe) / (1 - pe), abs=1e-12)  # 0.62121...
    # Gorodkin's MCC: (c*s - sum p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2))
    cov = 15 * 20 - 136
    mcc = cov / np.sqrt((400 - (49 + 25 + 64)) * (400 - (36 + 36 + 64)))
    assert r["mcc"] == pytest.approx(mcc, abs=1e-12)  # 164 / sqrt(262 * 264)
    assert r["confusion"] == cm.tolist()


def test_multiclass_metrics_agree_with_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    y = rng.integers(0, 3, 500)
    scores = rng.integers(-128, 128, (500, 3))
    scores[np.arange(500), y] += 60  # better than chance
    r = M.multiclass_summary(y, scores)
    pred = np.argmax(scores, axis=1)
    assert r["accuracy"] == pytest.approx(sk.accuracy_score(y, pred), abs=1e-12)
    assert r["macro_f1"] == pytest.approx(sk.f1_score(y, pred, average="macro"), abs=1e-12)
    assert r["kappa"] == pytest.approx(sk.cohen_kappa_score(y, pred), abs=1e-12)
    assert r["mcc"] == pytest.approx(sk.matthews_corrcoef(y, pred), abs=1e-12)
    assert r["confusion"] == sk.confusion_matrix(y, pred, labels=[0, 1, 2]).tolist()


def test_a_class_never_predicted_counts_zero_in_the_macro_mean():
    r = M.from_confusion(np.array([[4, 0, 0], [2, 0, 0], [1, 0, 3]]))
    assert r["precision"][1] == 0.0 and r["recall"][1] == 0.0 and r["f1"][1] == 0.0
    f1_neg = 2 * (4 / 7) * 1.0 / (4 / 7 + 1.0)
    f1_pos = 2 * 1.0 * 0.75 / 1.75
    assert r["macro_f1"] == pytest.approx((f1_neg + f1_pos) / 3, abs=1e-12)


def test_class_weights_balance_sqrt_and_none():
    from tinysmile.train.train import class_weights

    y = np.array([0] * 8 + [1] * 2)
    assert class_weights(y) == pytest.approx({0: 10 / 16, 1: 10 / 4})  # n / (2 k)
    y3 = np.array([0] * 9 + [1] * 4 + [2] * 1)
    w = class_weights(y3, 3, "sqrt")
    # proportional to 1/sqrt(count): 1/3, 1/2, 1, scaled to a mean weight of 1 per sample
    scale = 14 / (9 / 3 + 4 / 2 + 1 / 1)
    assert w == pytest.approx({0: scale / 3, 1: scale / 2, 2: scale})
    assert class_weights(y3, 3, "none") == {0: 1.0, 1: 1.0, 2: 1.0}
    with pytest.raises(TinysmileError, match="no samples of class 2"):
        class_weights(np.array([0, 1, 1]), 3)


def test_architecture_heads_for_two_and_more_classes():
    from tinysmile.train.arch import load_arch, num_classes, with_classes

    a = load_arch("embedded3")
    assert num_classes(a) == 2
    three = with_classes(a, 3)
    assert three["layers"][-1]["units"] == 3 and three["layers"][-1]["activation"] == "softmax"
    assert three["layers"][:-1] == a["layers"][:-1]
    assert with_classes(three, 2)["layers"] == a["layers"]
    att = load_arch("attitude48")
    assert num_classes(att) == 3 and att["input"] == {"height": 48, "width": 48}
    from tinysmile.train.arch import arch_macs

    assert arch_macs(att) <= 5_000_000
    bad = json.loads(json.dumps(TINY_ARCH))
    bad["layers"][0]["activation"] = "softmax"
    with pytest.raises(TinysmileError, match="softmax is the last dense layer's only"):
        load_arch(bad)


def test_emotion_map_option():
    from tinysmile.train.dataset import parse_emotion_map

    m = parse_emotion_map("surprise=positive, fear=neutral", "attitude")
    # FER_EMOTIONS: angry, disgust, fear, happy, sad, surprise, neutral
    assert m == {0: 0, 1: 0, 2: 1, 3: 2, 4: 0, 5: 2, 6: 1}
    assert parse_emotion_map(None, "attitude") is None
    for bad in ("surprise", "joy=positive", "happy=great"):
        with pytest.raises(TinysmileError, match="--emotion-map"):
            parse_emotion_map(bad, "attitude")


# -- a tiny model on a FER2013-like folder ---------------------------------------------


def _fer_folder(root: Path, per_class: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), ("validation", max(per_class // 3, 4))):
        for emo, mean in BRIGHTNESS.items():
            d = root / split / emo
            d.mkdir(parents=True)
            for i in range(n):
                img = np.clip(rng.normal(mean, 18, (48, 48)), 0, 255).astype(np.uint8)
                cv2.imwrite(str(d / f"{split}_{emo}_{i}.png"), img)
    return root


@pytest.fixture(scope="module")
def fer(tmp_path_factory):
    from tinysmile.data.importers import import_dataset
    from tinysmile.data.store import Store

    root = tmp_path_factory.mktemp("fer")
    folder = _fer_folder(root / "fer", 24)
    with Store(root / "store") as store:
        r = import_dataset("fer2013", folder, store, task="attitude")
    assert r.added == 7 * 24 + 7 * 8
    return root


@pytest.fixture(scope="module")
def tiny_bundle(fer):
    pytest.importorskip("tensorflow")
    from tinysmile.train.quantize import quantize_run
    from tinysmile.train.train import train_run

    arch = fer / "tiny.json"
    arch.write_text(json.dumps(TINY_ARCH))
    run = fer / "run"
    result = train_run(
        fer / "store",
        str(arch),
        run,
        task="attitude",
        epochs=12,
        batch_size=16,
        learning_rate=2e-2,
        patience=12,
        augment_strength=0.0,
        verbose=0,
        say=lambda *_: None,
    )
    report = quantize_run(run, fer / "bundle", calibration=40, say=lambda *_: None)
    return fer / "bundle", result, report


@pytest.mark.slow
def test_a_tiny_attitude_model_trains_and_quantizes_with_an_int8_softmax(tiny_bundle, fer):
    from ai_edge_litert.interpreter import Interpreter

    from tinysmile.bundle import load_bundle

    bundle_dir, result, report = tiny_bundle
    assert result["task"] == "attitude" and result["labels"] == LABELS
    # brightness separates the classes: far above the majority class's 40 / 56
    assert result["val"]["accuracy"] >= 0.85
    assert sum(sum(row) for row in result["val"]["confusion"]) == 56
    bundle = load_bundle(bundle_dir)
    assert bundle.labels == LABELS and bundle.meta["task"] == "attitude"
    assert "threshold_int8" not in bundle.meta
    it = Interpreter(model_content=bundle.model_bytes())
    out = it.get_output_details()[0]
    assert out["dtype"] == np.int8 and list(out["shape"]) == [1, 3]
    # TFLite's full-int8 softmax: scale 1/256, zero point -128
    assert out["quantization"] == (1 / 256, -128)
    assert report["ops"][-1] == "SOFTMAX"
    assert bundle.meta["output"]["shape"] == [1, 3]
    q = bundle.meta["metrics"]["val"]["int8"]
    assert q["accuracy"] >= 0.85 and set(q) >= {"macro_f1", "kappa", "mcc", "confusion"}
    card = (bundle_dir / "MODEL_CARD.md").read_text()
    assert "int8 macro-F1" in card and "confusion" in card
    # the data named by content, not by the trainer's folder
    hashes = bundle.meta["provenance"]["data_sha256"]
    assert set(hashes) == {"train", "val", "test"} and str(fer) not in card


@pytest.mark.slow
def test_emotion_pretraining_starts_an_attitude_run(fer, tmp_path):
    pytest.importorskip("tensorflow")
    import keras

    from tinysmile.train.train import train_run

    arch = fer / "tiny.json"
    if not arch.exists():
        arch.write_text(json.dumps(TINY_ARCH))
    quiet = {"verbose": 0, "say": lambda *_: None, "augment_strength": 0.0, "batch_size": 16}
    emo = train_run(fer / "store", str(arch), tmp_path / "emo", task="emotion", epochs=1, **quiet)
    assert len(emo["labels"]) == 7 and emo["val"]["support"] == [8] * 7
    assert len(emo["val"]["confusion"]) == 7
    train_run(
        fer / "store",
        str(arch),
        tmp_path / "att",
        task="attitude",
        epochs=1,
        learning_rate=1e-9,  # so the copied weights are still the pretrained ones
        init=tmp_path / "emo",
        **quiet,
    )
    info = json.loads((tmp_path / "att" / "run.json").read_text())
    assert info["init"]["layers"] == ["conv1"] and info["init"]["fresh"] == ["output"]
    a = keras.models.load_model(tmp_path / "emo" / "model.keras", compile=False)
    b = keras.models.load_model(tmp_path / "att" / "model.keras", compile=False)
    wa, wb = a.get_layer("conv1").get_weights()[0], b.get_layer("conv1").get_weights()[0]
    assert np.max(np.abs(wa - wb)) < 1e-5
    assert b.get_layer("output").get_weights()[0].shape[1] == 3


def _cli_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_predict_json_gives_the_label_and_three_probabilities(tiny_bundle, fer, capsys):
    from tinysmile.bundle import load_bundle
    from tinysmile.data.preprocess import PreprocessSpec, load_image, preprocess, to_int8
    from tinysmile.train.infer import run_tflite

    bundle_dir = tiny_bundle[0]
    images = sorted((fer / "fer" / "validation").glob("*/*_0.png"))
    out = _cli_json(capsys, "predict", str(bundle_dir), *map(str, images), "--json")
    bundle = load_bundle(bundle_dir)
    spec = PreprocessSpec.from_dict(bundle.preprocess)
    scale, zp = bundle.meta["input"]["scale"], bundle.meta["input"]["zero_point"]
    for path, p in zip(images, out["predictions"], strict=True):
        assert set(p["probabilities"]) == set(LABELS)
        # the int8 outputs from LiteRT directly; softmax probabilities are (q + 128) / 256
        q = run_tflite(
            bundle.model_bytes(), to_int8(spec, preprocess(spec, load_image(path)), scale, zp)[None]
        )[0]
        assert p["outputs_int8"] == q.tolist()
        assert [p["probabilities"][k] for k in LABELS] == [(int(v) + 128) / 256 for v in q]
        assert p["label"] == LABELS[int(np.argmax(q))]
        # an int8 softmax sums to 1 within its rounding: at most half a step per output
        assert abs(sum(p["probabilities"].values()) - 1) <= 1.5 / 256


@pytest.mark.slow
def test_evaluate_gives_accuracy_f1_kappa_mcc_and_the_confusion(tiny_bundle, fer, capsys):
    r = _cli_json(
        capsys,
        "evaluate",
        str(tiny_bundle[0]),
        "--data",
        str(fer / "store"),
        "--split",
        "val",
        "--json",
    )
    cm = np.array(r["confusion"])
    assert cm.shape == (3, 3) and cm.sum() == r["n"] == 56
    assert cm.sum(axis=1).tolist() == [40, 8, 8]  # 5 negative emotions x 8, neutral, happy
    assert r["accuracy"] == pytest.approx(np.trace(cm) / 56, abs=1e-12)
    for key in ("macro_f1", "kappa", "mcc"):
        assert r[key] == pytest.approx(M.from_confusion(cm)[key], abs=1e-12)
    assert r["labels"] == LABELS
    capsys.readouterr()
    assert (
        main(["evaluate", str(tiny_bundle[0]), "--data", str(fer / "store"), "--split", "val"]) == 0
    )
    text = capsys.readouterr().out
    assert "macro-F1" in text and "kappa" in text and "MCC" in text and "confusion" in text


@needs_emulator
@pytest.mark.slow
def test_the_attitude_model_is_bit_exact_on_the_emulated_board(tiny_bundle, fer, tmp_path):
    # verify: every output byte of the generated C on the emulated Cortex-M4 against
    # LiteRT's reference kernels, SOFTMAX included; in a fresh interpreter, no TensorFlow.
    code = (
        "import sys\n"
        "from tinysmile.cli import main\n"
        f"rc = main(['verify', {str(tiny_bundle[0])!r}, '--samples', '12', '--json'])\n"
        f"rc2 = main(['verify', {str(tiny_bundle[0])!r}, '--data', {str(fer / 'fer' / 'validation' / 'happy')!r}, '--json'])\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
        "sys.exit(rc or rc2)\n"
    )
    env = dict(os.environ, TINYSMILE_STATE_DIR=str(tmp_path / "state"))
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    dec = json.JSONDecoder()
    text, outs = res.stdout.strip(), []
    while text:
        obj, end = dec.raw_decode(text)
        outs.append(obj)
        text = text[end:].strip()
    random_inputs, images = outs[:2]
    assert random_inputs["ok"] is True and random_inputs["matched"] == 12
    assert images["ok"] is True and images["matched"] == 8


# -- the Pi ----------------------------------------------------------------------------


@pytest.mark.slow
def test_pi_run_shows_the_attitude_keeps_a_history_and_lights_for_positive(
    tiny_bundle, fer, tmp_path
):
    from gpiozero.pins.mock import MockFactory

    from tinysmile.bundle import load_bundle
    from tinysmile.pi.camera import FolderCamera
    from tinysmile.pi.gpio import Pins
    from tinysmile.pi.loop import HISTORY, Bot
    from tinysmile.train.infer import Runner

    frames = tmp_path / "frames"
    frames.mkdir()
    order = ["happy", "sad", "neutral", "happy", "happy", "angry"] * 3  # 18 frames
    for i, emo in enumerate(order):
        src = sorted((fer / "fer" / "validation" / emo).glob("*.png"))[i % 8]
        shutil.copy(src, frames / f"{i:03d}.png")
    factory = MockFactory()
    bundle = load_bundle(tiny_bundle[0])
    bot = Bot(bundle, detector="none", pins=Pins(27, None, factory=factory))
    led = factory.pin(27)
    seen = []
    bot.run(FolderCamera(frames), emit=lambda r: seen.append((r, led.state)))
    # The Pi decides as predict does on the same crops (LiteRT on the frame as given);
    # the LED, the history and the counts are then checked against those decisions.
    runner = Runner(bundle)
    want = [runner.predict_file(f)["label"] for f in sorted(frames.iterdir())]
    assert [r["attitude"] for r, _ in seen] == want
    truth = [{"happy": "positive", "neutral": "neutral"}.get(e, "negative") for e in order]
    assert sum(a == b for a, b in zip(want, truth)) >= 14  # the tiny model mostly right
    assert "positive" in want and len(set(want)) >= 2
    assert [bool(s) for _, s in seen] == [w == "positive" for w in want]
    assert seen[-1][0]["history"] == want[-HISTORY:]
    line = bot.stats.line()
    assert "history: " + " ".join(w[:3] for w in want[-HISTORY:]) in line
    assert line.split(" | ")[1].startswith(f"{want[-1]} (neg ")
    assert bot.stats.summary()["attitudes"] == {k: want.count(k) for k in LABELS}
    bot.close()


@pytest.mark.slow
def test_pi_run_cli_prints_the_attitudes_and_the_history(tiny_bundle, fer, capsys):
    cam = fer / "fer" / "validation" / "happy"
    capsys.readouterr()
    args = [
        "pi",
        "run",
        str(tiny_bundle[0]),
        "--camera",
        f"folder:{cam}",
        "--detector",
        "none",
        "--no-gpio",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    from tinysmile.train.infer import Runner

    runner = Runner(tiny_bundle[0])
    want = [runner.predict_file(f)["label"] for f in sorted(cam.iterdir())]
    counts = ", ".join(f"{want.count(k)} {k}" for k in LABELS)
    assert f"8 frames, 8 with a face ({counts})" in out
    assert "history: " + " ".join(w[:3] for w in want) in out
    assert main([*args, "--mcu", "/dev/null"]) == 2  # the board's app decides smiles only


# -- ratings ---------------------------------------------------------------------------


def _attitude_store(root: Path, n: int) -> list[str]:
    from label_helpers import synthetic_image

    from tinysmile.data.store import Store

    rng = np.random.default_rng(3)
    ids = []
    with Store(root) as store, store.transaction():
        for i in range(n):
            r = store.add_image(
                synthetic_image(rng, i % 2),
                suffix=".png",
                label=None,
                task="attitude",
                source="unlabelled",
                original=f"synthetic/{i}.png",
            )
            ids.append(r.id)
    return ids


def test_attitude_ratings_take_three_answers_and_resolve_to_labels(tmp_path):
    import uuid

    from tinysmile.data.store import Store
    from tinysmile.label.ratings import LabelConfig, RatingError, Ratings, page_keys

    _attitude_store(tmp_path / "s", 4)
    keys = page_keys("attitude")
    assert [(k["key"], k["answer"]) for k in keys["keys"]] == [
        ("1", "negative"), ("2", "neutral"), ("3", "positive"), ("u", "unsure"), (" ", "skip"),
    ]  # fmt: skip
    with Store(tmp_path / "s", create=False) as store:
        smile = Ratings(store, "unlabelled", LabelConfig(raters=1))
        assert smile.next_for("ann")["image"] is None  # no smile samples in this store
        ratings = Ratings(store, "unlabelled", LabelConfig(raters=1), task="attitude")
        answers = {}
        for answer in ("positive", "neutral", "negative"):
            img = ratings.next_for("ann")["image"]
            ratings.vote(uuid.uuid4().hex, "ann", img, answer)
            answers[img] = answer
        img = ratings.next_for("ann")["image"]
        with pytest.raises(RatingError, match="answer: one of negative, neutral, positive"):
            ratings.vote(uuid.uuid4().hex, "ann", img, "yes")
        labels = {s.id: s.label for s in store.samples(task="attitude")}
    assert labels == {i: LABELS.index(a) for i, a in answers.items()}


def test_label_serve_tells_the_page_the_attitude_keys(tmp_path):
    from label_helpers import Server

    ids = _attitude_store(tmp_path / "s", 2)
    with Server(tmp_path / "s", "--task", "attitude", "--raters-per-image", "1") as srv:
        status, task = srv.get("api/task")
        assert status == 200 and task["task"] == "attitude"
        assert [k["key"] for k in task["keys"]] == ["1", "2", "3", "u", " "]
        status, nxt = srv.get("api/next?rater=ann")
        assert nxt["image"] in ids
        status, reply = srv.vote("ann", nxt["image"], "positive")
        assert status == 200, reply
        status, reply = srv.vote("ann", reply["image"], "yes")
        assert status == 400 and "negative, neutral, positive" in reply["error"]
    with Server(tmp_path / "s") as srv:  # the default stays smile
        assert [k["answer"] for k in srv.get("api/task")[1]["keys"]][:2] == ["yes", "no"]


# -- the shipped attitude model --------------------------------------------------------

ATTITUDE_DEFAULT = REPO / "tinysmile" / "models" / "attitude_default"
FER_VAL = Path(os.environ.get("TINYSMILE_FER2013", REPO.parent / "shared" / "datasets" / "fer2013"))


def test_the_shipped_attitude_model_and_its_card_agree():
    import hashlib

    from ai_edge_litert.interpreter import Interpreter

    from tinysmile.bundle import load_bundle
    from tinysmile.compiler.api import compile_in_memory
    from tinysmile.train.quantize import model_card

    bundle = load_bundle("attitude_default")  # by name, from tinysmile/models
    assert bundle.path == ATTITUDE_DEFAULT
    meta = bundle.meta
    assert meta["task"] == "attitude" and bundle.labels == LABELS
    assert meta["model_sha256"] == hashlib.sha256(bundle.model_bytes()).hexdigest()
    it = Interpreter(model_content=bundle.model_bytes())
    assert it.get_output_details()[0]["quantization"] == (1 / 256, -128)
    assert list(it.get_input_details()[0]["shape"]) == [1, 48, 48, 1]
    assert meta["macs"] == sum(layer["macs"] for layer in meta["layers"]) <= 5_000_000
    report = compile_in_memory(bundle.model_bytes()).report
    assert report["arena_bytes"] == meta["device"]["arena_bytes"]
    # The card is the bundle's own rendering, and its figures follow from its confusion.
    card = (ATTITUDE_DEFAULT / "MODEL_CARD.md").read_text()
    assert card == model_card(meta)
    # FER2013's test split is held back: the card says so, not the hash of no sample at all.
    assert meta["provenance"]["data_sha256"]["test"] == hashlib.sha256(b"").hexdigest()
    assert "test empty, train `" in card
    q = meta["metrics"]["val"]["int8"]
    cm = np.array(q["confusion"])
    assert cm.sum() == q["n"] == meta["provenance"]["val_samples"]
    for key in ("accuracy", "macro_f1", "kappa", "mcc"):
        assert q[key] == pytest.approx(M.from_confusion(cm)[key], abs=1e-12)
    assert set(meta["provenance"]["data_sha256"]) == {"train", "val", "test"}


@pytest.mark.skipif(not (FER_VAL / "validation").is_dir(), reason=f"FER2013 not at {FER_VAL}")
def test_the_shipped_attitude_model_on_fer2013_images(capsys):
    # Ten validation images of each attitude: the model's decisions are the largest of
    # LiteRT's int8 outputs, and it does far better than the majority class (negative) on
    # them (the card's full figure is on all 3,293 validation images).
    images = []
    for emo in ("happy", "neutral", "angry"):
        images += sorted((FER_VAL / "validation" / emo).glob("*.jpg"))[:10]
    out = _cli_json(capsys, "predict", "attitude_default", *map(str, images), "--json")
    labels = [p["label"] for p in out["predictions"]]
    for p in out["predictions"]:
        assert p["label"] == LABELS[int(np.argmax(p["outputs_int8"]))]
    truth = ["positive"] * 10 + ["neutral"] * 10 + ["negative"] * 10
    assert sum(a == b for a, b in zip(labels, truth)) >= 15
