"""Binary-classification metrics in numpy: AUC, ROC/PR curves, thresholds.

No TensorFlow and no scikit-learn, so `tinysmile evaluate` stays light. Scores can be
floats (the float model's probabilities) or int8 outputs: a threshold t means
"smile when score >= t" in both cases.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.errors import TinysmileError

DEFAULT_TARGET_PRECISION = 0.90


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise TinysmileError(f"{y.size} labels but {s.size} scores")
    if y.size and not np.isin(y, (0, 1)).all():
        raise TinysmileError("binary metrics need labels 0/1")
    return y, s


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted one half); NaN if one class."""
    y, s = _check(labels, scores)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # Average ranks make tied scores (common with int8 outputs) count one half.
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, dtype=np.float64)
    sorted_s = s[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], s.size]
    for a, b in zip(starts, ends):
        ranks[order[a:b]] = (a + b + 1) / 2.0  # 1-based average rank
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def paired_bootstrap_auc(
    labels: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """How sure is "A's AUC is higher than B's" on these images? Both models' scores of the
    same images are resampled together (images drawn with replacement); returns A minus B
    on the images as they are, the 95 % percentile interval of that difference over the
    resamples and the share of resamples in which A is at least as good."""
    y, a = _check(labels, scores_a)
    _, b = _check(labels, scores_b)
    if resamples < 1:
        raise TinysmileError("the bootstrap needs at least one resample")
    if not 0 < y.sum() < y.size:
        raise TinysmileError("comparing AUCs needs images of both classes")
    rng = np.random.default_rng(seed)
    diffs = []
    while len(diffs) < resamples:
        i = rng.integers(0, y.size, y.size)
        if 0 < y[i].sum() < y.size:  # a resample with one class has no AUC: draw again
            diffs.append(roc_auc(y[i], a[i]) - roc_auc(y[i], b[i]))
    d = np.array(diffs)
    low, high = np.percentile(d, [2.5, 97.5])
    return {
        "difference": roc_auc(y, a) - roc_auc(y, b),
        "low": float(low),
        "high": float(high),
        "resamples": resamples,
        "seed": seed,
        "share_not_worse": float((d >= 0).mean()),
    }


def curve_points(labels: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """Per distinct threshold (descending): tp, fp, fn, tn, precision, recall, fpr."""
    y, s = _check(labels, scores)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s_sorted)), s.size - 1]
    tp = np.cumsum(y_sorted)[last_of_run]
    fp = (last_of_run + 1) - tp
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0)
        recall = tp / n_pos if n_pos else np.zeros_like(tp, dtype=np.float64)
        fpr = fp / n_neg if n_neg else np.zeros_like(fp, dtype=np.float64)
    return {
        "threshold": s_sorted[last_of_run],
        "tp": tp,
        "fp": fp,
        "fn": n_pos - tp,
        "tn": n_neg - fp,
        "precision": precision,
        "recall": recall,
        "fpr": fpr,
    }


def at_threshold(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Counts and rates of the decision "positive when score >= threshold"."""
    y, s = _check(labels, scores)
    pred = s >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    n = y.size
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return {
        "threshold": float(threshold),
        "accuracy": (tp + tn) / n if n else float("nan"),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def threshold_for_precision(
    labels: np.ndarray, scores: np.ndarray, target: float = DEFAULT_TARGET_PRECISION
) -> tuple[float, bool]:
    """The lowest threshold whose precision reaches `target` (so recall is highest).

    Returns (threshold, reached). When no threshold reaches the target, the threshold
    with the best F1 is returned with reached=False.
    """
    pts = curve_points(labels, scores)
    if pts["threshold"].size == 0:
        raise TinysmileError("no samples to choose a threshold on")
    ok = np.flatnonzero((pts["precision"] >= target) & (pts["tp"] > 0))
    if ok.size:
        # Points run from the highest threshold down; the last qualifying one has the
        # most recall.
        return float(pts["threshold"][ok[-1]]), True
    tp, fp, fn = pts["tp"], pts["fp"], pts["fn"]
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    return float(pts["threshold"][int(np.argmax(f1))]), False


def summary(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
) -> dict[str, Any]:
    """AUC plus the decision metrics at `threshold`, with the class counts."""
    y, s = _check(labels, scores)
    out = {"n": int(y.size), "positives": int(y.sum()), "auc": roc_auc(y, s)}
    out.update(at_threshold(y, s, threshold))
    return out


def plot_curves(labels: np.ndarray, scores: np.ndarray, out_dir: Any, title: str) -> list[str]:
    """roc.png and pr.png in out_dir; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")  # no display on CI or on the training box
    from pathlib import Path

    import matplotlib.pyplot as plt

    out = Path(out_dir)
    pts = curve_points(labels, scores)
    auc = roc_auc(labels, scores)
    fpr = np.r_[0.0, pts["fpr"]]
    tpr = np.r_[0.0, pts["recall"]]

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    ax.plot(fpr, tpr, lw=1.5, label=f"AUC {auc:.4f}")
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC — {title}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "roc.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    ax.plot(pts["recall"], pts["precision"], lw=1.5)
    ax.set(xlabel="recall", ylabel="precision", title=f"precision-recall — {title}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    fig.tight_layout()
    fig.savefig(out / "pr.png")
    plt.close(fig)
    return ["roc.png", "pr.png"]


def degraded_auc(
    score: Any, pixels: np.ndarray, labels: np.ndarray, clean_auc: float, seed: int = 0
) -> dict[str, Any]:
    """The same images, each through one seeded serving-skew degradation
    (`tinysmile.data.augment.degrade`), scored by ``score(pixels) -> scores``: the overall
    AUC, its drop from the clean figure, and the AUC within each degradation's share."""
    from tinysmile.data.augment import degrade

    degraded, names = degrade(pixels, seed)
    scores = np.asarray(score(degraded))
    auc = roc_auc(labels, scores)
    by = {}
    for name in sorted(set(names)):
        mask = np.array([n == name for n in names])
        part = labels[mask]
        if 0 < part.sum() < part.size:  # an AUC needs both classes
            by[name] = {"n": int(mask.sum()), "auc": roc_auc(part, scores[mask])}
    return {"seed": seed, "auc": auc, "auc_drop": clean_auc - auc, "by_degradation": by}


# -- several classes (attitude, emotions): decisions by argmax --------------------------


def confusion(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """counts[i, j]: samples of true class i predicted as j."""
    y = np.asarray(labels).astype(np.int64).ravel()
    p = np.asarray(predicted).astype(np.int64).ravel()
    if y.shape != p.shape:
        raise TinysmileError(f"{y.size} labels but {p.size} predictions")
    if y.size and (y.min() < 0 or y.max() >= classes or p.min() < 0 or p.max() >= classes):
        raise TinysmileError(f"labels and predictions must lie in 0..{classes - 1}")
    out = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(out, (y, p), 1)
    return out


def from_confusion(cm: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1, Cohen's kappa and the multi-class Matthews correlation of a
    confusion matrix, with per-class precision, recall and F1. A class that is never
    predicted (or never present) has precision (or recall) 0 in the macro mean, as the
    usual definition has it, so a model that ignores a class is not flattered."""
    cm = np.asarray(cm, dtype=np.int64)
    n = int(cm.sum())
    if n == 0:
        raise TinysmileError("no samples to score")
    tp = np.diag(cm).astype(np.float64)
    actual = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    accuracy = tp.sum() / n
    # Agreement expected by chance from the two marginals.
    chance = float((actual * predicted).sum()) / (n * n)
    kappa = (accuracy - chance) / (1 - chance) if chance < 1 else float("nan")
    # Gorodkin's R_K: (c s - sum p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2)).
    c, s = tp.sum(), float(n)
    cov = c * s - float((predicted * actual).sum())
    var_p = s * s - float((predicted * predicted).sum())
    var_t = s * s - float((actual * actual).sum())
    mcc = cov / np.sqrt(var_p * var_t) if var_p > 0 and var_t > 0 else 0.0
    return {
        "n": n,
        "accuracy": float(accuracy),
        "macro_f1": float(f1.mean()),
        "kappa": float(kappa),
        "mcc": float(mcc),
        "precision": [float(v) for v in precision],
        "recall": [float(v) for v in recall],
        "f1": [float(v) for v in f1],
        "support": [int(v) for v in actual],
        "confusion": cm.tolist(),
    }


def multiclass_summary(labels: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """The metrics of argmax decisions over ``scores`` (N, K): float probabilities or the
    int8 outputs (on ties the lower class, as numpy's argmax and the C's scan take it)."""
    s = np.asarray(scores)
    if s.ndim != 2 or s.shape[1] < 2:
        raise TinysmileError(f"multi-class scores must be (N, K >= 2), got shape {s.shape}")
    return from_confusion(confusion(labels, np.argmax(s, axis=1), s.shape[1]))


def degraded_classes(
    score: Any, pixels: np.ndarray, labels: np.ndarray, clean_accuracy: float, seed: int = 0
) -> dict[str, Any]:
    """degraded_auc's twin for a classifier of several classes: the accuracy of the argmax
    decisions on the same images, each through one seeded serving-skew degradation; its
    drop from the clean figure; the accuracy within each degradation's share."""
    from tinysmile.data.augment import degrade

    degraded, names = degrade(pixels, seed)
    predicted = np.argmax(np.asarray(score(degraded)), axis=1)
    right = predicted == np.asarray(labels)
    by = {}
    for name in sorted(set(names)):
        mask = np.array([n == name for n in names])
        by[name] = {"n": int(mask.sum()), "accuracy": float(right[mask].mean())}
    accuracy = float(right.mean())
    return {
        "seed": seed,
        "accuracy": accuracy,
        "accuracy_drop": clean_accuracy - accuracy,
        "by_degradation": by,
    }
