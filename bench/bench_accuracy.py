"""Accuracy benchmark: architectures compared by 10-fold cross-validation. Prints tables;
not a test.

    python bench/bench_accuracy.py --data runs/default/store \\
        [--arch embedded3 --arch tinysmile/models/smile_default] [--folds 0-9] \\
        [--epochs 30] [--seed 0] [--patience 8] [--out runs/bench-accuracy] [--json] \\
        [--student tinysmile/models/smile_default [--teacher embedded3] [--distill 0.5]]

Why: the store's test split (about 1,100 SMILEsmileD images) cannot tell two models apart
by less than about 0.008 AUC, and a choice made by looking at it again and again is a
choice fitted to it. Here every image is a test image once.

Folds are the tenths of the content-hash space that the store's split is cut from
(`tinysmile.data.store.split_for_hash`). Fold k is the test fold, fold k-1 validates
(early stopping and the threshold), the other eight train: the sizes and the recipe of
`tinysmile train` + `tinysmile quantize`, whose split is fold 9 tested with fold 8
validating. Every architecture trains on the same folds with the same seed and is scored
in full int8 on its test fold, clean and through the serving-skew degradations, so the
comparison is paired fold by fold. `--arch` takes what `tinysmile search --baseline`
does: a built-in name, an architecture JSON, a training run or a bundle (the first `--arch`
is the reference). A `--student` is trained on each fold with the same fold's `--teacher`
(one of the --arch, the first unless named) as its teacher: `train_run(teacher=...)`, each
target `--distill` times the teacher's probability and the rest the label.

Each (architecture, fold) result is kept in --out, with its float model; run again, a
stopped benchmark goes on from the folds it has (a result is used again only for the same
architecture, data, seed, epochs and patience, and for a student the same teacher and
weight). A store split otherwise than by hash (FER2013's own split) is still folded by
hash here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

FOLDS = 10
DEFAULT_BUNDLE = Path(__file__).resolve().parent.parent / "tinysmile" / "models" / "smile_default"
# Two-sided 95 % quantiles of Student's t by degrees of freedom (folds - 1).
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def fold_of(sample_id: str) -> int:
    from tinysmile.data.store import hash_bucket

    # The buckets split_for_hash cuts 80/10/10, in tenths: 8 is val, 9 is test.
    return hash_bucket(sample_id) // 10


def parse_folds(text: str) -> list[int]:
    out: set[int] = set()
    for part in text.split(","):
        a, _, b = part.partition("-")
        try:
            lo, hi = int(a), int(b or a)
        except ValueError:
            raise SystemExit(f"--folds: {part!r} is not a fold or a range like 0-9") from None
        if not 0 <= lo <= hi < FOLDS:
            raise SystemExit(f"--folds: {part!r} is not within 0-{FOLDS - 1}")
        out.update(range(lo, hi + 1))
    return sorted(out)


def run_fold(
    store: Path,
    arch: dict,
    fold: int,
    samples: list,
    args,
    folder: Path,
    key: dict,
    teacher: Path | None = None,
) -> dict:
    from tinysmile.train.quantize import quantize_run
    from tinysmile.train.train import MODEL_FILE, SPEC_FILE, train_run

    val_fold = (fold - 1) % FOLDS
    splits: dict[str, list] = {"train": [], "val": [], "test": []}
    for s in samples:
        f = fold_of(s.id)
        splits["test" if f == fold else "val" if f == val_fold else "train"].append(s)
    work = folder / "work"
    shutil.rmtree(work, ignore_errors=True)
    quiet = lambda *a, **k: None
    trained = train_run(
        store,
        arch,
        work / "run",
        epochs=args.epochs,
        seed=args.seed,
        patience=args.patience,
        verbose=0,
        say=quiet,
        split_samples=splits,
        teacher=teacher,
        distill=args.distill,
    )
    report = quantize_run(work / "run", work / "bundle", say=quiet, split_samples=splits)
    if "test" not in report:
        raise SystemExit(f"fold {fold}: its test images are all of one class; no AUC")
    test = report["test"]
    result = {
        **key,
        "arch": arch["name"],
        "fold": fold,
        "val_fold": val_fold,
        "epochs_run": trained["epochs_run"],
        "train_seconds": trained["train_seconds"],
        "n": {k: len(v) for k, v in splits.items()},
        "macs": trained["macs"],
        "val_auc_int8": report["val"]["int8"]["auc"],
        "test_auc_float": test["float"]["auc"],
        "test_auc_int8": test["int8"]["auc"],
        "test_auc_degraded": test["degraded"]["auc"],
    }
    # The float model and its preprocessing stay (tens of kB): a later setting can take
    # them as the same fold's teacher (--teacher).
    for name in (MODEL_FILE, SPEC_FILE):
        shutil.copyfile(work / "run" / name, folder / name)
    (folder / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return result


def mean_ci(xs: list[float]) -> tuple[float, float, float]:
    m = float(np.mean(xs))
    if len(xs) < 2:
        return m, math.nan, math.nan
    half = T975[len(xs) - 1] * float(np.std(xs, ddof=1)) / math.sqrt(len(xs))
    return m, m - half, m + half


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a dataset store (tinysmile data import)")
    ap.add_argument(
        "--arch",
        action="append",
        help="built-in name, JSON, run or bundle; repeat (default: embedded3, the bundled default)",
    )
    ap.add_argument("--folds", default=f"0-{FOLDS - 1}", help="test folds, e.g. 0-9 or 2,5")
    ap.add_argument("--epochs", type=int, default=30, help="epochs of each training (max)")
    ap.add_argument("--seed", type=int, default=0, help="the seed of every training")
    ap.add_argument(
        "--patience", type=int, default=8, help="epochs without a better val AUC before stopping"
    )
    ap.add_argument("--out", default="runs/bench-accuracy", help="per-fold results (resumes)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead")
    ap.add_argument(
        "--student",
        action="append",
        default=[],
        help="an architecture trained with the same fold's --teacher as its teacher; repeat",
    )
    ap.add_argument("--teacher", help="the students' teacher, one of the --arch [the first]")
    ap.add_argument(
        "--distill",
        type=float,
        default=0.5,
        help="a student's targets: this much the teacher's probability, the rest the label",
    )
    args = ap.parse_args()
    from tinysmile.search.search import load_baseline

    archs = [load_baseline(a) for a in args.arch or ["embedded3", str(DEFAULT_BUNDLE)]]
    # (name, architecture, its teacher's name or None)
    entries = [(a["name"], a, None) for a in archs]
    if args.teacher and not args.student:
        raise SystemExit("--teacher teaches the --student architectures: name one")
    if args.student:
        teacher = archs[0]["name"]
        if args.teacher:
            teacher = load_baseline(args.teacher)["name"]
            if teacher not in {a["name"] for a in archs}:
                raise SystemExit(f"--teacher {args.teacher}: not one of the --arch")
        if not 0 < args.distill <= 1:
            raise SystemExit(f"--distill must be in (0, 1], got {args.distill}")
        for s in args.student:
            a = load_baseline(s)
            entries.append((f"{a['name']} (from {teacher})", a, teacher))
    names = [e[0] for e in entries]
    if len(set(names)) != len(names):
        raise SystemExit(f"two --arch share a name: {names}")
    folds = parse_folds(args.folds)

    from tinysmile.search.trials import data_hash
    from tinysmile.train.arch import arch_key
    from tinysmile.train.dataset import store_samples
    from tinysmile.train.train import MODEL_FILE, check_store

    store = check_store(args.data)
    samples = store_samples(store, None)
    data = data_hash(store)
    out = Path(args.out)
    console = Console(stderr=True)
    results: dict[str, dict[int, dict]] = {n: {} for n in names}
    folders: dict[str, Path] = {}  # each entry's setting folder
    keys: dict[str, dict] = {}
    todo = []
    # The --arch come first, so a teacher's fold is trained before its students'.
    for name, arch, teacher in entries:
        # A result is reused only for the same architecture, data and training settings.
        key = {
            "arch_key": arch_key(arch),
            "data": data,
            "seed": args.seed,
            "epochs": args.epochs,
            "patience": args.patience,
        }
        if teacher is not None:
            key["teacher"] = keys[teacher]
            key["distill"] = args.distill
        keys[name] = key
        # Each setting has a folder of its own: a run with other settings overwrites nothing.
        setting = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
        folders[name] = out / re.sub(r"[^A-Za-z0-9_.-]", "_", arch["name"]) / setting
        for fold in folds:
            folder = folders[name] / f"fold{fold}"
            done = folder / "result.json"
            # A teacher's result is reused only with its model (kept since students came).
            teaching = any(t == name for _, _, t in entries)
            if done.is_file() and (not teaching or (folder / MODEL_FILE).is_file()):
                r = json.loads(done.read_text())
                if all(r.get(k) == v for k, v in key.items()):
                    results[name][fold] = r
                    continue
            from_ = None if teacher is None else folders[teacher] / f"fold{fold}"
            todo.append((name, arch, fold, folder, key, from_))
    started = time.perf_counter()
    for i, (name, arch, fold, folder, key, from_) in enumerate(todo):
        folder.mkdir(parents=True, exist_ok=True)
        r = run_fold(store, arch, fold, samples, args, folder, key, from_)
        results[name][fold] = r
        spent = time.perf_counter() - started
        eta = spent / (i + 1) * (len(todo) - i - 1)
        console.print(
            f"[{i + 1}/{len(todo)}] {name} fold {fold}: int8 test AUC "
            f"{r['test_auc_int8']:.4f}, degraded {r['test_auc_degraded']:.4f} "
            f"({r['train_seconds']:.0f} s training; about {eta / 60:.0f} min to go)"
        )

    if args.json:
        print(json.dumps({n: [results[n][f] for f in folds] for n in names}, indent=2))
        return
    report(names, folds, results)


def report(names: list[str], folds: list[int], results: dict) -> None:
    ref, others = names[0], names[1:]
    console = Console(width=160)
    table = Table(title="int8 AUC on each test fold (clean / degraded)")
    table.add_column("fold")
    table.add_column("test n", justify="right")
    for n in names:
        table.add_column(n, justify="right")
    for n in others:
        table.add_column(f"{n} - {ref}", justify="right")
    for f in folds:
        r0 = results[ref][f]
        row = [
            f"{f} (val {r0['val_fold']})" + (" = store split" if f == FOLDS - 1 else ""),
            str(r0["n"]["test"]),
        ]
        row += [
            f"{results[n][f]['test_auc_int8']:.4f} / {results[n][f]['test_auc_degraded']:.4f}"
            for n in names
        ]
        row += [f"{results[n][f]['test_auc_int8'] - r0['test_auc_int8']:+.4f}" for n in others]
        table.add_row(*row)
    console.print(table)

    summary = Table(title=f"over {len(folds)} folds: mean, and its 95 % interval (t)")
    for col in (
        "architecture",
        "MACs",
        "int8 AUC",
        "degraded AUC",
        "drop",
        f"AUC - {ref}",
        f"folds >= {ref}",
    ):
        summary.add_column(col, justify="left" if col == "architecture" else "right")
    for n in names:
        clean = [results[n][f]["test_auc_int8"] for f in folds]
        degraded = [results[n][f]["test_auc_degraded"] for f in folds]
        drop = [c - d for c, d in zip(clean, degraded)]
        diff = [results[n][f]["test_auc_int8"] - results[ref][f]["test_auc_int8"] for f in folds]
        m, lo, hi = mean_ci(clean)
        dm, dlo, dhi = mean_ci(diff)
        summary.add_row(
            n,
            f"{results[n][folds[0]]['macs']:,}",
            f"{m:.4f} ({lo:.4f} to {hi:.4f})",
            f"{np.mean(degraded):.4f}",
            f"{np.mean(drop):.4f} (max {max(drop):.4f})",
            "-" if n == ref else f"{dm:+.4f} ({dlo:+.4f} to {dhi:+.4f})",
            "-" if n == ref else f"{sum(d >= 0 for d in diff)} of {len(diff)}",
        )
    console.print(summary)


if __name__ == "__main__":
    from tinysmile.errors import TinysmileError

    try:
        sys.exit(main())
    except TinysmileError as e:
        sys.exit(f"error: {e}")
