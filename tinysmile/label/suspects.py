"""The suspects queue: labels the model disagrees with, most suspect first.

Every labelled image gets a predicted probability from a model that never saw it: the
images are split into a few stratified folds, and a small net trained on the other
folds predicts each fold (out-of-fold probabilities; a few cheap epochs of the
embedded net are enough to rank, not to ship). cleanlab's `find_label_issues` then
estimates which given labels are unlikely under those probabilities; images are ranked by
label quality (the probability of the given label, lowest first). cleanlab's
estimate of how many labels are wrong tells raters how far down the queue to go.
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
    batch_size: int = 16,
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


def rank_label_issues(labels: np.ndarray, p_smile: np.ndarray) -> tuple[list[int], int]:
    """Every image's index, most suspect label first, and how many cleanlab flags.

    The order is cleanlab's label-quality score (self-confidence) with the predicted
    probabilities adjusted by each class's average self-confidence: a net trained a few
    epochs is not calibrated (its probabilities huddle on one side of 0.5), and without
    the adjustment one class's correct labels rank among the other's wrong ones.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    pred_probs = np.stack([1.0 - p_smile, p_smile], axis=1)
    quality = get_label_quality_scores(
        labels, pred_probs, method="self_confidence", adjust_pred_probs=True
    )
    flagged = int(np.sum(find_label_issues(labels=labels, pred_probs=pred_probs)))
    return np.argsort(quality, kind="stable").tolist(), flagged


def find_suspects(
    store_dir: str | Path,
    *,
    folds: int = 3,
    epochs: int = 3,
    arch: str = "embedded3",
    limit: int | None = None,
    seed: int = 0,
    top: int = 200,
    batch_size: int = 16,
    say: Any = print,
) -> dict[str, Any]:
    """Rank the store's labels, most suspect first; the `top` first become the queue."""
    check_arch(arch)
    if folds < 2:
        raise TinysmileError(f"--folds must be >= 2, got {folds}")
    if epochs < 1:
        raise TinysmileError(f"--epochs must be >= 1, got {epochs}")
    if top < 1 or batch_size < 1:
        raise TinysmileError("--top and --batch-size must be >= 1")
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
        order, flagged = rank_label_issues(data.labels, probs)
        suspicion = 1.0 - np.where(data.labels == 1, probs, 1.0 - probs)
        # Images the raters already settled are not suspects of the import any more.
        rated = {
            r[0]
            for r in store.query(
                "SELECT id FROM samples WHERE task=? AND rating='resolved'", (TASK,)
            )
        }
        queue = [(data.names[i], float(suspicion[i])) for i in order if data.names[i] not in rated][
            :top
        ]
        set_suspects(store, queue)
    return {
        "images": int(data.labels.size),
        "suspects": len(queue),
        "flagged": flagged,
        "oof_auc": M.roc_auc(data.labels, probs),
        "folds": folds,
        "epochs": epochs,
        "seconds": round(time.perf_counter() - started, 1),
        "ranked": [{"image": s, "suspicion": round(score, 4)} for s, score in queue],
    }
