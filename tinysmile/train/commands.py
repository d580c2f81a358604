"""`tinysmile train | quantize | predict | evaluate`.

Only click and the standard library at import time: train and quantize import
TensorFlow inside their functions, predict and evaluate never do (LiteRT only).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from tinysmile.errors import TinysmileError


def _command_line() -> str:
    return "tinysmile " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _echo_err(msg: str) -> None:
    click.echo(msg, err=True)


@click.command("train")
@click.option(
    "--arch",
    type=click.Choice(["alexnet", "reduced-alexnet", "embedded3"]),
    default="embedded3",
    show_default=True,
)
@click.option(
    "--data", "data", required=True, type=click.Path(path_type=Path), help="Dataset store."
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run directory.")
@click.option("--epochs", type=int, default=40, show_default=True, help="Most epochs to run.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--learning-rate", type=float, default=3e-3, show_default=True)
@click.option(
    "--patience", type=int, default=8, show_default=True, help="Early-stopping patience (epochs)."
)
@click.option("--limit", type=int, default=None, help="Train on a fixed subset of this many.")
@click.option(
    "--augment",
    "augment_strength",
    type=float,
    default=1.0,
    show_default=True,
    help="Augmentation strength (0: none).",
)
@click.option(
    "--target-precision",
    type=float,
    default=0.9,
    show_default=True,
    help="The threshold is the lowest reaching this precision on validation.",
)
@click.option(
    "--face-crop",
    type=click.Choice(["none", "haar"]),
    default="none",
    show_default=True,
    help="none: the images are face crops already (SMILEsmileD); haar: detect faces.",
)
@click.option("--size", type=int, default=64, show_default=True, help="Input height and width.")
def train_cmd(
    arch: str,
    data: Path,
    out: Path,
    epochs: int,
    seed: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    limit: int | None,
    augment_strength: float,
    target_precision: float,
    face_crop: str,
    size: int,
) -> None:
    """Train ARCH on a store's train split; early stopping on validation AUC."""
    from tinysmile.data.preprocess import PreprocessSpec
    from tinysmile.train.train import train_run

    if batch_size < 1:
        raise TinysmileError(f"--batch-size must be >= 1, got {batch_size}")
    spec = PreprocessSpec(height=size, width=size, face_crop=face_crop)
    result = train_run(
        data,
        arch,
        out,
        epochs=epochs,
        seed=seed,
        batch_size=batch_size,
        learning_rate=learning_rate,
        patience=patience,
        limit=limit,
        augment_strength=augment_strength,
        target_precision=target_precision,
        spec=spec,
        command=_command_line(),
        verbose=1 if sys.stderr.isatty() else 2,
        say=_echo_err,
    )
    v = result["val"]
    click.echo(
        f"{arch}: val AUC {v['auc']:.4f}, at threshold {result['threshold']:.3f}: "
        f"precision {v['precision']:.3f} recall {v['recall']:.3f} F1 {v['f1']:.3f}; "
        f"{result['macs']:,} MACs, {result['params']:,} params; "
        f"{result['train_seconds']:.0f} s, best epoch {result['best_epoch']}/{result['epochs_run']}"
    )
    click.echo(f"run written to {out}")


@click.command("quantize")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Bundle folder [RUN/bundle]."
)
@click.option("--name", default=None, help="Bundle name [the folder's name].")
@click.option(
    "--calibration",
    type=int,
    default=500,
    show_default=True,
    help="Representative training images for the int8 ranges.",
)
@click.option(
    "--reproduce",
    default=None,
    help="The command that rebuilds this bundle from scratch, for the model card.",
)
def quantize_cmd(
    run: Path, out: Path | None, name: str | None, calibration: int, reproduce: str | None
) -> None:
    """Full-int8 conversion of a training run, checked with LiteRT; writes a bundle."""
    from tinysmile.train.quantize import quantize_run

    if calibration < 1:
        raise TinysmileError(f"--calibration must be >= 1, got {calibration}")
    report = quantize_run(
        run,
        out,
        calibration=calibration,
        name=name,
        command=_command_line(),
        reproduce=reproduce,
        say=_echo_err,
    )
    for split in ("val", "test"):
        if split in report:
            m = report[split]
            click.echo(
                f"{split}: AUC float {m['float']['auc']:.4f} int8 {m['int8']['auc']:.4f} "
                f"(drop {m['auc_drop']:+.4f}); flipped decisions {m['flipped']} / "
                f"{m['int8']['n']} ({100 * m['flipped_fraction']:.2f} %)"
            )
    click.echo(
        f"{report['model_bytes']:,} bytes, ops {', '.join(sorted(set(report['ops'])))}; "
        f"bundle written to {report['bundle']}"
    )


@click.command("predict")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def predict_cmd(model: Path, images: tuple[Path, ...], as_json: bool) -> None:
    """Smile or not for each IMAGE, with MODEL (a bundle folder or .tflite)."""
    from tinysmile.train.infer import Runner

    runner = Runner(model)
    results = [runner.predict_file(p) for p in images]
    if as_json:
        click.echo(json.dumps({"model": runner.bundle.name, "predictions": results}, indent=2))
        return
    for r in results:
        face = "" if "face_found" not in r else ("" if r["face_found"] else "  (no face found)")
        click.echo(f"{r['image']}: {r['label']}  p={r['probability']:.3f}{face}")


@click.command("evaluate")
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    help="A dataset store or a class-per-folder tree.",
)
@click.option(
    "--split",
    type=click.Choice(["train", "val", "test", "all"]),
    default="test",
    show_default=True,
    help="For a store: which split.",
)
@click.option("--limit", type=int, default=None, help="Evaluate a fixed subset of this many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def evaluate_cmd(model: Path, data: Path, split: str, limit: int | None, as_json: bool) -> None:
    """AUC, accuracy, precision, recall and F1 of MODEL at its threshold."""
    from tinysmile.train import metrics as M
    from tinysmile.train.dataset import load_data
    from tinysmile.train.infer import Runner

    runner = Runner(model)
    arrays = load_data(runner.spec, data, None if split == "all" else split, limit=limit)
    scores = runner.scores(arrays.pixels, progress=sys.stderr.isatty())
    result = M.summary(arrays.labels, scores, runner.threshold_int8)
    result = {
        "model": runner.bundle.name,
        "data": str(data),
        "split": split,
        **result,
        # summary() saw int8 scores; say the threshold both ways, as the bundle does.
        "threshold": float(runner.dequantize(runner.threshold_int8)),
        "threshold_int8": runner.threshold_int8,
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"{result['model']} on {data} ({split}): {result['n']} images, "
        f"{result['positives']} smiling\n"
        f"AUC {result['auc']:.4f}  accuracy {result['accuracy']:.4f}  "
        f"precision {result['precision']:.4f}  recall {result['recall']:.4f}  F1 {result['f1']:.4f}\n"
        f"at int8 threshold {runner.threshold_int8}: tp {result['tp']} fp {result['fp']} "
        f"fn {result['fn']} tn {result['tn']}"
    )
