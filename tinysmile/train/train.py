"""`tinysmile train`: fit one architecture on a store's train split.

Class weighting, on-the-fly augmentation (the data package's transforms plus a
horizontal flip), cosine-decayed Adam, early stopping on validation AUC with the best
weights restored. With a teacher (a trained run's float model), each target mixes the
label with the teacher's probability for the same augmented image (distillation). The
run directory receives the float model, the preprocess spec, metrics at a threshold
chosen on the validation split, ROC/PR plots and the per-layer cost. TensorFlow is
imported inside the functions only.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tinysmile import __version__
from tinysmile.data.augment import augment
from tinysmile.data.preprocess import PreprocessSpec, crop_to_input, to_float
from tinysmile.errors import TinysmileError
from tinysmile.train import metrics as M
from tinysmile.train.arch import (
    Arch,
    layer_costs,
    load_arch,
    total_macs,
    total_params,
    with_classes,
    with_input,
)
from tinysmile.train.dataset import (
    Arrays,
    is_store,
    load_samples,
    split_samples_of,
    store_samples,
    subset,
    task_labels,
)

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
LAYERS_FILE = "layers.json"
SPEC_FILE = "preprocess.json"
MODEL_FILE = "model.keras"
ARCH_FILE = "arch.json"
BALANCES = ("balanced", "sqrt", "none")


def labels_of(task: str) -> list[str]:
    """The class names of a task: the smile models' two (as their bundles have always
    named them), else the store's or FER2013's emotions (tinysmile.train.dataset)."""
    return ["no_smile", "smile"] if task == "smile" else task_labels(task)


def import_tensorflow() -> Any:
    """TensorFlow with its C++ start-up chatter silenced (it goes to stderr otherwise)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def seed_everything(seed: int, deterministic: bool = False) -> None:
    import keras

    # Python, numpy and the backend at once. Op determinism is off by default because on
    # 2 cores it costs more time than the run-to-run jitter it removes is worth; the
    # search turns it on, since its trials must give the same figures wherever they run.
    keras.utils.set_random_seed(seed)
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def class_weights(
    labels: np.ndarray, classes: int = 2, balance: str = "balanced"
) -> dict[int, float]:
    """Per-class loss weights with a mean weight of 1 over the samples. balanced: every
    class counts equally (weight inversely proportional to its count); sqrt: halfway
    there (inversely proportional to the count's square root; for accuracy on a skewed
    set such as FER2013's attitude, where full balance buys the rare classes' recall with
    the common one's); none: every sample 1."""
    if balance not in BALANCES:
        raise TinysmileError(f"class balance is one of {', '.join(BALANCES)}, got {balance!r}")
    n = labels.size
    counts = np.array([int(np.sum(labels == c)) for c in range(classes)], dtype=np.float64)
    for c in range(classes):
        if counts[c] == 0:
            raise TinysmileError(f"the training split has no samples of class {c}")
    power = {"balanced": 1.0, "sqrt": 0.5, "none": 0.0}[balance]
    raw = counts**-power
    raw *= n / float((raw * counts).sum())
    return {c: float(raw[c]) for c in range(classes)}


def augment_batch(
    pixels: np.ndarray, rng: np.random.Generator, strength: float, flip: bool = True
) -> np.ndarray:
    out = np.empty_like(pixels)
    for i, p in enumerate(pixels):
        a = augment(p, rng, strength) if strength > 0 else p
        # A smile is left-right symmetric; the data transforms have no mirror.
        if flip and rng.random() < 0.5:
            a = a[:, ::-1]
        out[i] = a
    return out


class Teacher:
    """A trained float model whose probabilities become part of another model's targets.

    ``weight`` of each target is the teacher's probability for the augmented image the
    student sees (resized to the teacher's input through the one crop-and-resize path),
    the rest the label."""

    @staticmethod
    def check(folder: str | Path, weight: float) -> None:
        if not 0 < weight <= 1:
            raise TinysmileError(f"--distill must be in (0, 1], got {weight}")
        for name in (MODEL_FILE, SPEC_FILE):
            if not (Path(folder) / name).is_file():
                raise TinysmileError(f"{folder}: not a training run to learn from (no {name})")

    def __init__(self, folder: str | Path, weight: float) -> None:
        import keras

        self.check(folder, weight)
        self.folder = Path(folder)
        self.weight = weight
        self.spec = PreprocessSpec.from_dict(json.loads((self.folder / SPEC_FILE).read_text()))
        self.model = keras.models.load_model(self.folder / MODEL_FILE, compile=False)

    def targets(self, pixels: np.ndarray, labels: np.ndarray) -> np.ndarray:
        import keras

        if pixels.shape[1:3] != (self.spec.height, self.spec.width):
            pixels = np.stack([crop_to_input(self.spec, p, None).pixels for p in pixels])
        out = self.model(to_float(self.spec, pixels), training=False)
        p = keras.ops.convert_to_numpy(out).reshape(-1)
        return ((1 - self.weight) * labels + self.weight * p).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"run": str(self.folder.resolve()), "weight": self.weight}
        if (self.folder / ARCH_FILE).is_file():
            info["arch"] = json.loads((self.folder / ARCH_FILE).read_text()).get("name")
        return info


def _batches(
    spec: PreprocessSpec,
    data: Arrays,
    weights: dict[int, float],
    batch_size: int,
    seed: int,
    strength: float,
    teacher: Teacher | None = None,
) -> Any:
    import keras

    class Batches(keras.utils.PyDataset):
        # Order and augmentation depend only on (seed, epoch, batch index), so a run is
        # reproducible whatever order the batches are fetched in.
        def __init__(self) -> None:
            # Two threads: augmentation (numpy/OpenCV, which release the GIL) runs while
            # TensorFlow computes the previous batch.
            super().__init__(workers=2, use_multiprocessing=False, max_queue_size=8)
            self.epoch = 0
            self.n = data.labels.size
            self.order = np.random.default_rng([seed, 0]).permutation(self.n)
            table = np.array([weights[c] for c in range(len(weights))], dtype=np.float32)
            self.w = table[data.labels]

        def __len__(self) -> int:
            return max(1, self.n // batch_size)

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            idx = self.order[i * batch_size : (i + 1) * batch_size]
            rng = np.random.default_rng([seed, self.epoch, i])
            pixels = augment_batch(data.pixels[idx], rng, strength)
            y = data.labels[idx].astype(np.float32)
            if teacher is not None:
                y = teacher.targets(pixels, y)
            return to_float(spec, pixels), y, self.w[idx]

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = np.random.default_rng([seed, self.epoch]).permutation(self.n)

    return Batches()


def predict_float(model: Any, spec: PreprocessSpec, pixels: np.ndarray) -> np.ndarray:
    """The float model's probabilities: (N,) of a 1-unit sigmoid, (N, K) of a softmax."""
    out = np.asarray(model.predict(to_float(spec, pixels), batch_size=256, verbose=0))
    return out.reshape(-1) if out.shape[-1] == 1 else out.reshape(len(out), -1)


def _load_split(
    spec: PreprocessSpec,
    store: Path,
    split: str,
    limit: int | None,
    say: Any,
    split_samples: Mapping[str, list] | None = None,
    task: str = "smile",
    emotion_map: Mapping[int, int] | None = None,
) -> Arrays | None:
    samples = subset(split_samples_of(store, split, split_samples, task, emotion_map), limit)
    if not samples:
        return None
    t = time.perf_counter()
    arrays = load_samples(spec, samples)
    if task == "smile":
        counts = f"{int(arrays.labels.sum())} smiling"
    else:
        names = labels_of(task)
        counts = ", ".join(
            f"{int(np.sum(arrays.labels == c))} {name}" for c, name in enumerate(names)
        )
    say(
        f"{split}: {arrays.labels.size} images ({counts}), loaded in {time.perf_counter() - t:.1f} s"
    )
    return arrays


def check_store(store: str | Path) -> Path:
    root = Path(store)
    if not root.exists() or not is_store(root):
        raise TinysmileError(
            f"{root}: not a dataset store (create one with `tinysmile data import`)"
        )
    return root


def store_spec(store: str | Path, height: int, width: int, task: str = "smile") -> PreprocessSpec:
    """The preprocessing to train on a store's images with: a face detector only for the
    importers that need one, and the framing of the crops a dataset ships (so that the
    bundle tells a camera runtime how to frame a detected face the same way)."""
    from tinysmile.data.preprocess import spec_for_sources
    from tinysmile.data.store import Store

    root = check_store(store)
    with Store(root, create=False) as s:
        # Emotions are read from the samples of the store's own tasks.
        tasks = [task] if task in s.tasks() else s.tasks()
        sources = sorted({src for t in tasks for src in s.sources(t)})
    return spec_for_sources(sources, height, width)


def train_run(
    data: str | Path,
    arch: str | Path | Arch,
    out: str | Path,
    *,
    epochs: int = 40,
    seed: int = 0,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    patience: int = 8,
    limit: int | None = None,
    augment_strength: float = 1.0,
    target_precision: float = M.DEFAULT_TARGET_PRECISION,
    spec: PreprocessSpec | None = None,
    command: str | None = None,
    verbose: int = 1,
    say: Any = print,
    deterministic: bool = False,
    split_samples: Mapping[str, list] | None = None,
    teacher: str | Path | None = None,
    distill: float = 0.5,
    task: str = "smile",
    emotion_map: Mapping[int, int] | None = None,
    init: str | Path | None = None,
    balance: str | None = None,
) -> dict[str, Any]:
    """Train and write the run directory; returns the metrics dict.

    ``task``: smile (one sigmoid unit, a threshold chosen on validation), or attitude or
    emotion (a softmax over the classes, decided by argmax; the architecture's head is
    made so). ``emotion_map``: FER2013 samples relabelled from their emotion
    (tinysmile.train.dataset.parse_emotion_map). ``init``: a run whose weights start this
    one, layer by layer where the names and shapes agree (transfer: pretrain on the seven
    emotions, fine-tune on attitude; or start from a smile model's features). ``balance``:
    the class weights (class_weights; default balanced for smile, sqrt otherwise).

    ``arch``: a built-in name, a JSON file or a document. The input size is the spec's
    when one is given (the architecture's input is resized to it), else the
    architecture's. ``split_samples`` maps "train", "val" and optionally "test" to the store's
    samples to use as each, in place of the store's own split (cross-validation).
    ``teacher``: a run folder (its model.keras and preprocess.json); each target is then
    ``distill`` times the teacher's probability plus the rest times the label."""
    names = labels_of(task)
    classes = len(names)
    binary = classes == 2
    balance = balance or ("balanced" if binary else "sqrt")
    arch_spec = with_classes(load_arch(arch), classes)
    store = check_store(data)
    if spec is None:
        spec = store_spec(store, arch_spec["input"]["height"], arch_spec["input"]["width"], task)
    arch_spec = with_input(arch_spec, spec.height, spec.width)
    arch_name = arch_spec["name"]
    if epochs < 1:
        raise TinysmileError(f"--epochs must be >= 1, got {epochs}")
    if not 0 < target_precision < 1:
        raise TinysmileError(f"target precision must be in (0, 1), got {target_precision}")
    if teacher is not None:
        if not binary:
            raise TinysmileError(
                "--teacher distils a smile model's probability; not for --task " + task
            )
        Teacher.check(teacher, distill)  # before the data is loaded
    if init is not None:
        load_run(init)  # before the data is loaded
    started = time.perf_counter()
    cpu_started = time.process_time()
    run = Path(out)
    run.mkdir(parents=True, exist_ok=True)

    small = None if limit is None else max(limit // 4, 1)
    train = _load_split(spec, store, "train", limit, say, split_samples, task, emotion_map)
    val = _load_split(spec, store, "val", small, say, split_samples, task, emotion_map)
    if train is None or val is None:
        raise TinysmileError(
            f"{store}: training needs {task} samples in both the train and val splits"
        )
    if binary and len(set(val.labels.tolist())) < 2:
        raise TinysmileError(f"{store}: the val split has one class only; AUC is undefined")
    weights = class_weights(train.labels, classes, balance)
    sources: dict[str, int] = {}
    for sample in store_samples(store, None, task, emotion_map):
        sources[sample.source] = sources.get(sample.source, 0) + 1

    import_tensorflow()
    import keras

    from tinysmile.train.arch import build_model, export_model

    teaching = None if teacher is None else Teacher(teacher, distill)
    seed_everything(seed, deterministic)
    model = build_model(arch_spec)
    initialised = None if init is None else init_from(model, init, say)
    batches = _batches(spec, train, weights, batch_size, seed, augment_strength, teaching)
    steps = len(batches) * epochs
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.05)
    # Early stopping watches the validation AUC of a smile model, the accuracy of a
    # classifier of more classes (the figure its targets are set in).
    watch = "auc" if binary else "accuracy"
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=[
            keras.metrics.AUC(name="auc", num_thresholds=500)
            if binary
            else keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        ],
    )
    stop = keras.callbacks.EarlyStopping(
        monitor=f"val_{watch}", mode="max", patience=patience, restore_best_weights=True, verbose=0
    )
    say(
        f"training {arch_name} on {train.labels.size} images, {epochs} epochs max, "
        f"batch {batch_size}, seed {seed}"
        + ("" if teaching is None else f", distilled from {teaching.folder} ({distill:g})")
    )
    t0 = time.perf_counter()
    history = model.fit(
        batches,
        epochs=epochs,
        validation_data=(
            to_float(spec, val.pixels),
            val.labels.astype(np.float32 if binary else np.int64),
        ),
        validation_batch_size=256,
        callbacks=[stop],
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - t0
    hist = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    key = f"val_{watch}"
    best_epoch = int(np.argmax(hist[key])) + 1 if hist.get(key) else len(hist["loss"])

    val_scores = predict_float(model, spec, val.pixels)
    result: dict[str, Any] = {"arch": arch_name, "task": task, "labels": names}
    test = _load_split(spec, store, "test", small, say, split_samples, task, emotion_map)
    if binary:
        # The threshold is chosen on validation, then applied unchanged to test.
        threshold, reached = M.threshold_for_precision(val.labels, val_scores, target_precision)
        result.update(
            target_precision=target_precision,
            target_precision_reached=reached,
            threshold=threshold,
            val=M.summary(val.labels, val_scores, threshold),
        )
        if test is not None and len(set(test.labels.tolist())) == 2:
            result["test"] = M.summary(
                test.labels, predict_float(model, spec, test.pixels), threshold
            )
        M.plot_curves(val.labels, val_scores, run, f"{arch_name}, validation")
    else:
        result["val"] = M.multiclass_summary(val.labels, val_scores)
        if test is not None:
            result["test"] = M.multiclass_summary(
                test.labels, predict_float(model, spec, test.pixels)
            )
    result.update(
        train_seconds=round(train_seconds, 1), epochs_run=len(hist["loss"]), best_epoch=best_epoch
    )

    costs = layer_costs(export_model(model))
    result["macs"] = total_macs(costs)
    result["params"] = total_params(costs)

    model.save(run / MODEL_FILE)
    (run / SPEC_FILE).write_text(json.dumps(spec.to_dict(), indent=2) + "\n")
    (run / ARCH_FILE).write_text(json.dumps(arch_spec, indent=2) + "\n")
    (run / LAYERS_FILE).write_text(json.dumps([c.to_dict() for c in costs], indent=2) + "\n")
    (run / METRICS_FILE).write_text(
        json.dumps({**result, "layers": [c.to_dict() for c in costs]}, indent=2) + "\n"
    )
    (run / RUN_FILE).write_text(
        json.dumps(
            {
                "arch": arch_name,
                "data": str(store.resolve()),
                "task": task,
                "labels": names,
                "emotion_map": None
                if emotion_map is None
                else {str(k): v for k, v in emotion_map.items()},
                "init": initialised,
                "class_balance": balance,
                "seed": seed,
                "epochs": epochs,
                "batch_size": batch_size,
                "learning_rate": learning_rate,
                "patience": patience,
                "limit": limit,
                # Trained on given samples, not the store's split (see quantize_run).
                "custom_split": split_samples is not None,
                "teacher": None if teaching is None else teaching.describe(),
                "augment_strength": augment_strength,
                "target_precision": target_precision,
                "class_weights": {str(k): v for k, v in weights.items()},
                "train_samples": int(train.labels.size),
                "val_samples": int(val.labels.size),
                "train_seconds": round(train_seconds, 1),
                # Loading, fitting, evaluating and saving: the command's wall time.
                "total_seconds": round(time.perf_counter() - started, 1),
                # CPU time of this process (all threads): on a shared machine the wall
                # time above also counts other jobs' turns on the cores.
                "cpu_seconds": round(time.process_time() - cpu_started, 1),
                "sources": sources,
                "cpu_count": os.cpu_count(),
                "command": command or " ".join(sys.argv),
                "tinysmile_version": __version__,
                "history": hist,
            },
            indent=2,
        )
        + "\n"
    )
    return result


RESTARTS_DIR = "restarts"


def train_restarts(
    data: str | Path,
    arch: str | Path | Arch,
    out: str | Path,
    restarts: int,
    *,
    seed: int = 0,
    say: Any = print,
    **kwargs: Any,
) -> dict[str, Any]:
    """Train ``restarts`` runs with seeds ``seed``, ``seed + 1``, ... and keep the one with
    the best validation AUC (the lowest seed on a tie).

    A small net's AUC moves with its seed alone by more than most recipe changes (the
    default's architecture: 0.967 to 0.974 on validation over three seeds), so the pick is
    made on validation and the test split stays unseen by it. Each run is kept whole in
    ``OUT/restarts/seed-N``; the chosen one is also copied to ``OUT``, which is then a run
    directory like any other, and its run.json lists every restart's validation AUC.
    Restart folders of an earlier run into the same ``OUT`` that this one did not train are
    removed once it has finished, so that ``OUT/restarts`` holds this run's alone."""
    if restarts < 1:
        raise TinysmileError(f"--restarts must be >= 1, got {restarts}")
    run = Path(out)
    if restarts == 1:
        result = train_run(data, arch, out, seed=seed, say=say, **kwargs)
        _remove_earlier_restarts(run, set(), say)
        return result
    started = time.perf_counter()
    results: list[tuple[int, dict[str, Any]]] = []
    for i in range(restarts):
        s = seed + i
        say(f"restart {i + 1}/{restarts}: seed {s}")
        result = train_run(data, arch, run / RESTARTS_DIR / f"seed-{s}", seed=s, say=say, **kwargs)
        say(f"restart {i + 1}/{restarts}: seed {s}, val AUC {result['val']['auc']:.4f}")
        results.append((s, result))
    # max() keeps the first of equals: the lowest seed.
    chosen, best = max(results, key=lambda r: r[1]["val"]["auc"])
    source = run / RESTARTS_DIR / f"seed-{chosen}"
    for f in source.iterdir():
        if f.is_file():
            shutil.copy2(f, run / f.name)
    info = json.loads((run / RUN_FILE).read_text())
    info["restarts"] = {
        "chosen_seed": chosen,
        "by": "val AUC",
        "val_auc": {str(s): r["val"]["auc"] for s, r in results},
        "seconds": round(time.perf_counter() - started, 1),
    }
    (run / RUN_FILE).write_text(json.dumps(info, indent=2) + "\n")
    _remove_earlier_restarts(run, {f"seed-{s}" for s, _ in results}, say)
    say(f"kept seed {chosen} (val AUC {best['val']['auc']:.4f}) of {restarts} restarts")
    return best


def _remove_earlier_restarts(run: Path, keep: set[str], say: Any) -> None:
    folder = run / RESTARTS_DIR
    if not folder.is_dir():
        return
    stale = sorted(p for p in folder.iterdir() if p.name not in keep)
    if stale:
        names = ", ".join(p.name for p in stale)
        say(f"removing {folder}'s folders from an earlier run into {run}: {names}")
    for p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    if not keep:
        folder.rmdir()


def init_from(model: Any, run_dir: str | Path, say: Any = print) -> dict[str, Any]:
    """Copy a trained run's weights into ``model`` layer by layer, where a layer of the same
    name has weights of the same shapes; returns which layers were taken and which kept
    their fresh initialisation (a head of another class count, a resized layer)."""
    import keras

    run, _, _ = load_run(run_dir)
    source = keras.models.load_model(run / MODEL_FILE, compile=False)
    theirs = {layer.name: layer for layer in source.layers}
    taken, fresh = [], []
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        other = theirs.get(layer.name)
        theirs_w = other.get_weights() if other is not None else []
        if len(theirs_w) == len(weights) and all(
            a.shape == b.shape for a, b in zip(theirs_w, weights, strict=True)
        ):
            layer.set_weights(theirs_w)
            taken.append(layer.name)
        else:
            fresh.append(layer.name)
    if not taken:
        raise TinysmileError(f"{run}: no layer of its model fits this architecture (--init)")
    say(f"weights from {run}: {', '.join(taken)}; initialised afresh: {', '.join(fresh) or 'none'}")
    return {"run": str(run.resolve()), "layers": taken, "fresh": fresh}


def load_run(run_dir: str | Path) -> tuple[Path, dict[str, Any], PreprocessSpec]:
    run = Path(run_dir)
    for name in (RUN_FILE, MODEL_FILE, SPEC_FILE):
        if not (run / name).is_file():
            raise TinysmileError(f"{run}: not a training run (no {name}; run `tinysmile train`)")
    info = json.loads((run / RUN_FILE).read_text())
    spec = PreprocessSpec.from_dict(json.loads((run / SPEC_FILE).read_text()))
    return run, info, spec
