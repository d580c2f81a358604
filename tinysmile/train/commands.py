"""`tinysmile train | quantize | predict | evaluate`.

Only click and the standard library at import time: train and quantize import
TensorFlow inside their functions, predict and evaluate never do (LiteRT only).
"""

from __future__ import annotations

import dataclasses
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
    default="embedded3",
    show_default=True,
    help="alexnet, reduced-alexnet, embedded3, or an architecture JSON file.",
)
@click.option(
    "--data", "data", required=True, type=click.Path(path_type=Path), help="Dataset store."
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run directory.")
@click.option(
    "--task",
    type=click.Choice(["smile", "attitude", "emotion"]),
    default="smile",
    show_default=True,
    help="smile: one sigmoid unit; attitude (negative, neutral, positive): a softmax over"
    " three; emotion: FER2013's seven emotions, read from the folder each FER2013 sample was"
    " imported from (to pretrain an attitude model). The architecture's head is made so.",
)
@click.option(
    "--emotion-map",
    default=None,
    help="Relabel FER2013 samples from their emotion: EMOTION=LABEL,... over the importer's"
    " mapping (happy positive, neutral neutral, the other five negative), e.g."
    " 'surprise=positive'.",
)
@click.option(
    "--init",
    type=click.Path(path_type=Path),
    default=None,
    help="A training run whose weights start this one, layer by layer where names and shapes"
    " agree (a head of another class count starts afresh): fine-tune an emotion run on"
    " attitude, or start from a smile run's features.",
)
@click.option(
    "--balance",
    type=click.Choice(["balanced", "sqrt", "none"]),
    default=None,
    help="Class weights: every class equal, inversely to the count's square root, or none"
    " [balanced for smile, sqrt for more classes].",
)
@click.option("--epochs", type=int, default=40, show_default=True, help="Most epochs to run.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--restarts",
    type=int,
    default=1,
    show_default=True,
    help="Train this many seeds (--seed, --seed + 1, ...) and keep the best on validation;"
    " each run stays in OUT/restarts/seed-N (folders an earlier run left there are removed).",
)
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
    type=click.Choice(["none", "haar", "blazeface-aligned"]),
    default=None,
    help="none: the images are face crops already (SMILEsmileD, FER2013); haar: detect"
    " faces; blazeface-aligned: BlazeFace's eyes level and size the face, as `pi run"
    " --detector blazeface-aligned` crops it [from the store's sources: haar for GENKI-4K"
    " and CelebA]. A store's SMILEsmileD and FER2013 crops are taken as they are, and"
    " photos mixed with them are framed like them.",
)
@click.option("--size", type=int, default=None, help="Input height and width [the architecture's].")
@click.option(
    "--teacher",
    type=click.Path(path_type=Path),
    default=None,
    help="A training run to learn from (distillation): each target mixes the label with the"
    " teacher's probability for the same augmented image. Train the teacher on the same"
    " store's split: one that has seen this run's val or test images inflates its figures.",
)
@click.option(
    "--distill",
    type=float,
    default=0.5,
    show_default=True,
    help="With --teacher: the teacher's share of each target, the rest the label's.",
)
def train_cmd(
    arch: str,
    data: Path,
    out: Path,
    task: str,
    emotion_map: str | None,
    init: Path | None,
    balance: str | None,
    epochs: int,
    seed: int,
    restarts: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    limit: int | None,
    augment_strength: float,
    target_precision: float,
    face_crop: str | None,
    size: int | None,
    teacher: Path | None,
    distill: float,
) -> None:
    """Train ARCH on a store's train split; early stopping on validation AUC (smile) or
    accuracy (attitude, emotion)."""
    from tinysmile.train.arch import load_arch
    from tinysmile.train.dataset import parse_emotion_map
    from tinysmile.train.train import store_spec, train_restarts

    if task != "smile" and restarts > 1:
        raise TinysmileError("--restarts picks by validation AUC: smile models only")
    mapping = parse_emotion_map(emotion_map, task)
    if batch_size < 1:
        raise TinysmileError(f"--batch-size must be >= 1, got {batch_size}")
    if size is not None and size < 1:
        raise TinysmileError(f"--size must be >= 1, got {size}")
    spec_arch = load_arch(arch)
    h, w = (size, size) if size else (spec_arch["input"]["height"], spec_arch["input"]["width"])
    spec = None  # the store's: the framing and face crop its sources need
    if size is not None or face_crop is not None:
        spec = store_spec(data, h, w, task)
        if face_crop is not None:
            spec = dataclasses.replace(spec, face_crop=face_crop)
    result = train_restarts(
        data,
        arch,
        out,
        restarts,
        epochs=epochs,
        seed=seed,
        batch_size=batch_size,
        learning_rate=learning_rate,
        patience=patience,
        limit=limit,
        augment_strength=augment_strength,
        target_precision=target_precision,
        spec=spec,
        teacher=teacher,
        distill=distill,
        task=task,
        emotion_map=mapping,
        init=init,
        balance=balance,
        command=_command_line(),
        verbose=1 if sys.stderr.isatty() else 2,
        say=_echo_err,
    )
    v = result["val"]
    if task != "smile":
        click.echo(
            f"{result['arch']} ({task}): val accuracy {v['accuracy']:.4f}, macro-F1 "
            f"{v['macro_f1']:.4f}, kappa {v['kappa']:.4f}, MCC {v['mcc']:.4f}; "
            f"{result['macs']:,} MACs, {result['params']:,} params; "
            f"{result['train_seconds']:.0f} s, best epoch {result['best_epoch']}/{result['epochs_run']}"
        )
        click.echo(f"run written to {out}")
        return
    click.echo(
        f"{result['arch']}: val AUC {v['auc']:.4f}, at threshold {result['threshold']:.3f}: "
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
@click.option(
    "--search",
    "search_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="The `tinysmile search` folder that found the run's architecture: the model card"
    " records that search (settings, time taken, steps, every trial).",
)
@click.option(
    "--profile",
    "profile_board",
    default=None,
    help="Also count one inference's instructions on this emulated board (an id from"
    " boards/) for the card; builds and boots the firmware.",
)
def quantize_cmd(
    run: Path,
    out: Path | None,
    name: str | None,
    calibration: int,
    reproduce: str | None,
    search_dir: Path | None,
    profile_board: str | None,
) -> None:
    """Full-int8 conversion of a training run, checked with LiteRT; writes a bundle whose
    model card gives AUC (clean and under the serving-skew degradations), arena and flash."""
    from tinysmile.train.quantize import quantize_run

    if calibration < 1:
        raise TinysmileError(f"--calibration must be >= 1, got {calibration}")
    searched = None
    if search_dir is not None:
        # The command wires the layers: the search's record is made here, so that quantizing
        # (below the search) never imports it.
        from tinysmile.search.search import search_record

        if not (run / "arch.json").is_file():
            raise TinysmileError(f"{run}: no arch.json to find in the search {search_dir}")
        searched = search_record(search_dir, run / "arch.json")
    report = quantize_run(
        run,
        out,
        calibration=calibration,
        name=name,
        command=_command_line(),
        reproduce=reproduce,
        searched=searched,
        profile_board=profile_board,
        say=_echo_err,
    )
    for split in ("val", "test"):
        if split in report and "accuracy_drop" in report[split]:
            m = report[split]
            q, d = m["int8"], m["degraded"]
            click.echo(
                f"{split}: accuracy float {m['float']['accuracy']:.4f} int8 {q['accuracy']:.4f}"
                f" (drop {m['accuracy_drop']:+.4f}), int8 macro-F1 {q['macro_f1']:.4f} kappa"
                f" {q['kappa']:.4f} MCC {q['mcc']:.4f}; degraded {d['accuracy']:.4f} (drop"
                f" {d['accuracy_drop']:+.4f}); flipped decisions {m['flipped']} / {q['n']}"
                f" ({100 * m['flipped_fraction']:.2f} %)"
            )
        elif split in report:
            m = report[split]
            d = m["degraded"]
            click.echo(
                f"{split}: AUC float {m['float']['auc']:.4f} int8 {m['int8']['auc']:.4f} "
                f"(drop {m['auc_drop']:+.4f}), degraded {d['auc']:.4f} (drop "
                f"{d['auc_drop']:+.4f}); flipped decisions {m['flipped']} / "
                f"{m['int8']['n']} ({100 * m['flipped_fraction']:.2f} %)"
            )
    click.echo(
        f"{report['model_bytes']:,} bytes, ops {', '.join(sorted(set(report['ops'])))}; "
        f"bundle written to {report['bundle']}"
    )


_detector_option = click.option(
    "--detector",
    type=click.Choice(["spec", "tiny", "blazeface", "blazeface-aligned", "haar"]),
    default="spec",
    show_default=True,
    help="How the face is found in each whole image. spec: as the bundle's preprocessing says "
    "(its face_crop); tiny: tinysmile's int8 face finder as the board's C, so an image gets "
    "the crop the microcontroller would give it; blazeface, haar: the Pi's detectors. "
    "evaluate: an image where it finds no face scores lowest (the bot says no smile).",
)


def _whole_image_detector(name: str, spec):
    """A detector for whole photos; tiny makes each one the default board's camera frame
    first (letterboxed, as `tinysmile frame` sends it), so the crop is the board's."""
    from tinysmile.boards import load_board
    from tinysmile.device.app import camera_frame
    from tinysmile.pi.detect import make_detector

    camera = (camera_frame(load_board(None)) or (320, 240)) if name == "tiny" else None
    return make_detector(name, spec, camera)


@click.command("predict")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@_detector_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def predict_cmd(model: Path, images: tuple[Path, ...], detector: str, as_json: bool) -> None:
    """Smile or not (or the attitude, with its three probabilities) for each IMAGE, with
    MODEL (a bundle folder or .tflite)."""
    from tinysmile.train.infer import Runner

    runner = Runner(model)
    finder = None
    if detector != "spec":
        finder = _whole_image_detector(detector, runner.spec)
    results = [runner.predict_file(p, finder) for p in images]
    if as_json:
        click.echo(json.dumps({"model": runner.bundle.name, "predictions": results}, indent=2))
        return
    for r in results:
        face = "" if "face_found" not in r else ("" if r["face_found"] else "  (no face found)")
        if "probabilities" in r:
            ps = "  ".join(f"{k} {v:.3f}" for k, v in r["probabilities"].items())
            click.echo(f"{r['image']}: {r['label']}  ({ps}){face}")
        else:
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
@click.option(
    "--degrade",
    is_flag=True,
    help="Also score every image through one serving-skew degradation (low dynamic range,"
    " backlit, crushed shadows, sensor noise, JPEG, blur, misframing), seeded, and report"
    " the AUC drop from the clean figure.",
)
@click.option(
    "--against",
    type=click.Path(path_type=Path),
    default=None,
    help="Another model bundle, scored on the same images (each with its own preprocessing;"
    " with --detector, the same detector's face framed by each one's spec): the AUC"
    " difference MODEL minus it, with a 95 % interval from a paired bootstrap over the"
    " images. Tells a real improvement from the split's noise.",
)
@click.option(
    "--resamples",
    type=click.IntRange(min=100),
    default=2000,
    show_default=True,
    help="Bootstrap resamples of --against.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of --degrade and --against."
)
@_detector_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def evaluate_cmd(
    model: Path,
    data: Path,
    split: str,
    limit: int | None,
    degrade: bool,
    against: Path | None,
    resamples: int,
    seed: int,
    detector: str,
    as_json: bool,
) -> None:
    """AUC, accuracy, precision, recall and F1 of MODEL at its threshold; with --degrade,
    how far the AUC falls on device-like captures of the same images; with --against,
    whether MODEL's AUC differs from another model's by more than the images' noise."""
    from tinysmile.train import metrics as M
    from tinysmile.train.dataset import load_data
    from tinysmile.train.infer import Runner

    runner = Runner(model)
    finder = None
    if detector != "spec":
        if degrade:
            raise TinysmileError("--detector does not take --degrade")
        finder = _whole_image_detector(detector, runner.spec)
    task = runner.bundle.meta.get("task", "smile")
    if runner.multiclass:
        if against is not None:
            raise TinysmileError("--against compares AUCs: smile models only")
        _evaluate_classes(runner, data, split, limit, degrade, seed, finder, detector, as_json)
        return
    arrays = load_data(
        runner.spec,
        data,
        None if split == "all" else split,
        task=task,
        limit=limit,
        detector=finder,
    )
    scores = runner.scores(arrays.pixels, progress=sys.stderr.isatty())
    if arrays.found is not None:
        import numpy as np

        scores = np.where(arrays.found, scores, -129)  # no face: the bot says no smile
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
    if arrays.found is not None:
        result["detector"] = detector
        result["faces_found"] = float(np.mean(arrays.found))
    if degrade:
        result["degraded"] = M.degraded_auc(
            lambda px: runner.scores(px, progress=sys.stderr.isatty()),
            arrays.pixels,
            arrays.labels,
            result["auc"],
            seed,
        )
    if against is not None:
        other = Runner(against)
        # With --detector, the other model's crops are the same detector's, framed by its
        # own spec (an aligned spec gets the aligned crop), as `pi run` would give it.
        other_finder = None if finder is None else _whole_image_detector(detector, other.spec)
        theirs = load_data(
            other.spec,
            data,
            None if split == "all" else split,
            task=task,
            limit=limit,
            detector=other_finder,
        )
        if theirs.names != arrays.names:  # the same loader on the same data: a bug if not
            raise TinysmileError(f"{against}: loaded other images than {model}")
        other_scores = other.scores(theirs.pixels, progress=sys.stderr.isatty())
        if theirs.found is not None:
            import numpy as np

            other_scores = np.where(theirs.found, other_scores, -129)
        result["against"] = {
            "model": other.bundle.name,
            "path": str(against),
            "auc": M.roc_auc(arrays.labels, other_scores),
            **({} if theirs.found is None else {"faces_found": float(np.mean(theirs.found))}),
            **M.paired_bootstrap_auc(arrays.labels, scores, other_scores, resamples, seed),
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
    if arrays.found is not None:
        click.echo(f"faces found by {detector}: {100 * result['faces_found']:.1f} %")
    if degrade:
        d = result["degraded"]
        parts = ", ".join(
            f"{name} {k['auc']:.4f} (n {k['n']})" for name, k in d["by_degradation"].items()
        )
        click.echo(
            f"degraded (one per image, seed {d['seed']}): AUC {d['auc']:.4f}, drop"
            f" {d['auc_drop']:+.4f}; {parts}"
        )
    if against is not None:
        a = result["against"]
        click.echo(
            f"against {a['model']} ({against}): AUC {a['auc']:.4f}; difference"
            f" {a['difference']:+.4f}, 95 % interval {a['low']:+.4f} to {a['high']:+.4f}"
            f" (paired bootstrap, {a['resamples']} resamples of the {result['n']} images,"
            f" seed {a['seed']}); {model} at least as good in"
            f" {100 * a['share_not_worse']:.0f} % of them"
        )


def _evaluate_classes(runner, data, split, limit, degrade, seed, finder, detector, as_json) -> None:
    """evaluate for a softmax model (attitude): accuracy, macro-F1, Cohen's kappa, MCC and
    the confusion matrix of its argmax decisions on the int8 outputs."""
    import numpy as np

    from tinysmile.train import metrics as M
    from tinysmile.train.dataset import load_data

    task = runner.bundle.meta.get("task", "attitude")
    labels = runner.labels
    arrays = load_data(
        runner.spec,
        data,
        None if split == "all" else split,
        task=task,
        limit=limit,
        detector=finder,
    )
    outputs = runner.outputs(arrays.pixels, progress=sys.stderr.isatty()).astype(np.int64)
    result = {
        "model": runner.bundle.name,
        "data": str(data),
        "split": split,
        "task": task,
        "labels": labels,
        **M.multiclass_summary(arrays.labels, outputs),
    }
    if arrays.found is not None:
        result["detector"] = detector
        result["faces_found"] = float(np.mean(arrays.found))
    if degrade:
        result["degraded"] = M.degraded_classes(
            lambda px: runner.outputs(px, progress=sys.stderr.isatty()),
            arrays.pixels,
            arrays.labels,
            result["accuracy"],
            seed,
        )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    counts = ", ".join(f"{n} {labels[i]}" for i, n in enumerate(result["support"]))
    click.echo(
        f"{result['model']} on {data} ({split}): {result['n']} images ({counts})\n"
        f"accuracy {result['accuracy']:.4f}  macro-F1 {result['macro_f1']:.4f}  "
        f"kappa {result['kappa']:.4f}  MCC {result['mcc']:.4f}"
    )
    width = max(len(n) for n in labels)
    click.echo("confusion (rows: true label, columns: predicted):")
    click.echo(" " * (width + 2) + " ".join(f"{n:>{width}}" for n in labels))
    for i, row in enumerate(result["confusion"]):
        click.echo(f"{labels[i]:>{width}}  " + " ".join(f"{v:>{width}}" for v in row))
    for i, n in enumerate(labels):
        click.echo(
            f"{n}: precision {result['precision'][i]:.4f} recall {result['recall'][i]:.4f}"
            f" F1 {result['f1'][i]:.4f}"
        )
    if arrays.found is not None:
        click.echo(f"faces found by {detector}: {100 * result['faces_found']:.1f} %")
    if degrade:
        d = result["degraded"]
        parts = ", ".join(f"{k} {v['accuracy']:.4f}" for k, v in d["by_degradation"].items())
        click.echo(
            f"degraded (one per image, seed {d['seed']}): accuracy {d['accuracy']:.4f}, drop"
            f" {d['accuracy_drop']:+.4f}; {parts}"
        )


@click.command("explain")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    help="A dataset store: also the mean map per true class over its --split.",
)
@click.option(
    "--split",
    type=click.Choice(["train", "val", "test"]),
    default="test",
    show_default=True,
)
@click.option("--limit", type=int, default=200, show_default=True, help="Images of --data at most.")
@click.option("--patch", type=int, default=8, show_default=True, help="Occluding square (px).")
@click.option("--stride", type=int, default=4, show_default=True, help="Its step (px).")
@_detector_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def explain_cmd(model, images, out, data, split, limit, patch, stride, detector, as_json) -> None:
    """What MODEL looks at: for each IMAGE, its crop and an occlusion map of the evidence
    (OUT/NAME_crop.png, NAME_map.png, NAME_map.npy). The map is made on the int8 model
    itself (LiteRT's reference kernels): each patch x patch square is covered with the
    crop's mean grey and the fall of the smile probability is spread over the square; red
    shows evidence for a smile, blue against it, on one scale for all the images of a run."""
    from tinysmile.data.preprocess import load_image, whole_image_crop
    from tinysmile.train.explain import class_means, explain_images
    from tinysmile.train.infer import Runner

    if not images and data is None:
        raise TinysmileError("explain: give IMAGES, --data STORE, or both")
    if limit < 1:
        raise TinysmileError(f"--limit must be >= 1, got {limit}")
    runner = Runner(model)
    finder = None if detector == "spec" else _whole_image_detector(detector, runner.spec)
    crops = [
        (str(path), whole_image_crop(runner.spec, load_image(path), finder).pixels)
        for path in images
    ]
    result: dict = {"model": runner.bundle.name, "method": "occlusion on the int8 model"}
    say = _echo_err if not as_json else (lambda m: None)
    if crops:
        result["images"] = explain_images(runner, crops, Path(out), patch, stride, say)
    if data is not None:
        from tinysmile.train.dataset import load_samples, store_samples, subset

        arrays = load_samples(runner.spec, subset(store_samples(data, split), limit))
        pairs = list(zip(arrays.pixels, (int(v) for v in arrays.labels), strict=True))
        result["classes"] = class_means(runner, pairs, Path(out), patch, stride, say)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for r in result.get("images", []):
        click.echo(
            f"{r['image']}: p={r['probability']:.3f}, evidence {r['evidence_min']:+.3f} to "
            f"{r['evidence_max']:+.3f}; {r['map']}"
        )
    for label, c in result.get("classes", {}).items():
        click.echo(f"mean map of {c['images']} {label} images: {c['map']}")
