"""The suspects queue: labels the model disagrees with, most suspect first.

Every labelled image gets a predicted probability from a model that never saw it: the
images are split into a few stratified folds, and a small net trained on the other
folds predicts each fold (out-of-fold probabilities; a few cheap epochs of the
embedded net are enough to rank, not to ship). cleanlab's `find_label_issues` then
flags the images whose given label is unlikely under those probabilities, ranked by
self-confidence (the probability of the given label, lowest first).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from tinysmile.data.preprocess import PreprocessSpec
from tinysmile.data.store import Store
from tinysmile.errors import TinysmileError
from tinysmile.label.ratings import TASK, set_suspects
from tinysmile.train import metrics as M
from tinysmile.train.arch import build_model, check_arch
from tinysmile.train.dataset import Arrays, load_samples, subset
from tinysmile.train.train import (
    _batches,
    class_weights,
    import_tensorflow,
    predict_float,
    seed_everything,
)


def out_of_fold_probabilities(
    pixels: np.ndarray,
    labels: np.ndarray,
    *,
    spec: PreprocessSpec,
    folds: int = 3,
    epochs: int = 3,
    arch: str = "embedded3",
    seed: int = 0,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    augment_strength: float = 0.5,
    say: Any = print,
) -> np.ndarray:
    """P(smile) for every image from a model trained on the folds it is not in."""
    from sklearn.model_selection import StratifiedKFold

    import_tensorflow()
    import keras

    probs = np.full(labels.size, np.nan, dtype=np.float64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (fit_idx, held_idx) in enumerate(splitter.split(np.zeros(labels.size), labels)):
        seed_everything(seed + k)
        model = build_model(arch, (spec.height, spec.width, 1))
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy")
        part = Arrays(pixels=pixels[fit_idx], labels=labels[fit_idx], names=[])
        batches = _batches(
            spec, part, class_weights(part.labels), batch_size, seed + k, augment_strength
        )
        t = time.perf_counter()
        model.fit(batches, epochs=epochs, verbose=0)
        probs[held_idx] = predict_float(model, spec, pixels[held_idx])
        say(
            f"fold {k + 1}/{folds}: trained on {fit_idx.size}, predicted {held_idx.size} "
            f"in {time.perf_counter() - t:.1f} s"
        )
        keras.backend.clear_session()
    return probs


def rank_label_issues(labels: np.ndarray, p_smile: np.ndarray) -> list[tuple[int, float]]:
    """(index, suspicion) of the images cleanlab flags, most suspect first.

    Suspicion is 1 - the out-of-fold probability of the given label.
    """
    from cleanlab.filter import find_label_issues

    pred_probs = np.stack([1.0 - p_smile, p_smile], axis=1)
    order = find_label_issues(
        labels=labels, pred_probs=pred_probs, return_indices_ranked_by="self_confidence"
    )
    return [(int(i), float(1.0 - pred_probs[i, labels[i]])) for i in order]


def find_suspects(
    store_dir: str | Path,
    *,
    folds: int = 3,
    epochs: int = 3,
    arch: str = "embedded3",
    limit: int | None = None,
    seed: int = 0,
    say: Any = print,
) -> dict[str, Any]:
    """Rank the store's suspect labels and make them the `suspects` queue."""
    check_arch(arch)
    if folds < 2:
        raise TinysmileError(f"--folds must be >= 2, got {folds}")
    if epochs < 1:
        raise TinysmileError(f"--epochs must be >= 1, got {epochs}")
    started = time.perf_counter()
    spec = PreprocessSpec()
    with Store(store_dir, create=False) as store:
        samples = subset(store.samples(task=TASK), limit)
        if len(samples) < 10 * folds:
            raise TinysmileError(
                f"{store.root}: {len(samples)} labelled images; suspects need at least "
                f"{10 * folds} for {folds} folds"
            )
        data = load_samples(spec, samples)
        if np.bincount(data.labels, minlength=2).min() < folds:
            raise TinysmileError(f"{store.root}: too few images of one class for {folds} folds")
        say(f"suspects: {data.labels.size} labelled images, {folds} folds x {epochs} epochs")
        probs = out_of_fold_probabilities(
            data.pixels,
            data.labels,
            spec=spec,
            folds=folds,
            epochs=epochs,
            arch=arch,
            seed=seed,
            say=say,
        )
        ranked = rank_label_issues(data.labels, probs)
        # Images the raters already settled are not suspects of the import any more.
        rated = {
            r[0]
            for r in store.query(
                "SELECT id FROM samples WHERE task=? AND rating='resolved'", (TASK,)
            )
        }
        queue = [(data.names[i], score) for i, score in ranked if data.names[i] not in rated]
        set_suspects(store, queue)
    return {
        "images": int(data.labels.size),
        "suspects": len(queue),
        "oof_auc": M.roc_auc(data.labels, probs),
        "folds": folds,
        "epochs": epochs,
        "seconds": round(time.perf_counter() - started, 1),
        "ranked": [{"image": s, "suspicion": round(score, 4)} for s, score in queue],
    }
