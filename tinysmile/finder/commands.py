"""`tinysmile detector train | evaluate`: the face finder the smiling-bot app runs.

Only click and the standard library at import time: train imports TensorFlow inside its
function, evaluate never does (LiteRT and the integer decode only)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tinysmile.errors import TinysmileError


@click.group("detector")
def detector_group() -> None:
    """The tiny int8 face finder: whole camera frame in, the face's box out. It runs on
    the board before the smile model (`flash --mode app`), on the Pi (`pi run --detector
    tiny`) and on the host, with the same bytes everywhere."""


@detector_group.command("train")
@click.option(
    "--data",
    "stores",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="A dataset store (repeatable). Face crops (SMILEsmileD, FER2013) are pasted into "
    "scenes; photos (GENKI-4K, CelebA) are placed whole, their box from BlazeFace.",
)
@click.option(
    "--captures",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A capture log of `pi run --log` (repeatable): its whole frames, with the box the "
    "Pi's detector found, are placed as photos (split by the store's hash rule).",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run folder.")
@click.option("--frames", type=int, default=36000, show_default=True, help="Training frames.")
@click.option("--val-frames", type=int, default=2000, show_default=True)
@click.option("--epochs", type=int, default=32, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def train_cmd(stores, captures, out, frames, val_frames, epochs, seed) -> None:
    """Make training frames from the stores' train split (their val split picks the score
    threshold), train the finder, quantize it to full int8 and write OUT/bundle, a model
    bundle for `flash --detector OUT/bundle`, `frame --detector OUT/bundle` and
    `detector evaluate OUT/bundle`. With the defaults, about 25 minutes on 2 cores."""
    from tinysmile.finder.train import train_finder

    if frames < 100 or val_frames < 20:
        raise TinysmileError("detector train: --frames >= 100 and --val-frames >= 20")
    for s in stores:
        if not (Path(s) / "store.sqlite").is_file():
            raise TinysmileError(f"{s}: not a dataset store (tinysmile data import ...)")
    meta = train_finder(
        list(stores),
        out,
        captures=list(captures),
        frames=frames,
        val_frames=val_frames,
        epochs=epochs,
        seed=seed,
        say=lambda m: click.echo(m, err=True),
    )
    click.echo(json.dumps({"bundle": str(Path(out) / "bundle"), **meta["metrics"]}, indent=2))


@detector_group.command("evaluate")
@click.argument("bundle", required=False)
@click.option(
    "--frames",
    "frames_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder of frames (images; any size: converted to the camera's frame).",
)
@click.option(
    "--boxes",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV image,x,y,w,h: the true face box in camera-frame pixels (empty: no face).",
)
@click.option("--board", "board_id", help="Whose camera frame (default: the default board).")
@click.option("--json", "as_json", is_flag=True)
def evaluate_cmd(bundle, frames_dir, boxes, board_id, as_json) -> None:
    """Faces found (IoU >= 0.3), false alarms, box error, per face size and position, of the
    finder BUNDLE (default: the bundled one) on the frames, decoded as the board decodes."""
    from tinysmile.finder.evaluate import evaluate_folder

    res = evaluate_folder(bundle, frames_dir, boxes, board_id)
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{res['bundle']} on {res['frames']} frames ({res['frame_size']})")
    for col in (
        "frames",
        "with face",
        "found",
        "IoU>=0.5",
        "false alarms",
        "centre err",
        "size err",
    ):
        table.add_column(col, justify="right")
    for name, m in res["groups"].items():
        table.add_row(
            name,
            str(m["frames_with_face"]),
            f"{m['found']:.1%}",
            f"{m['found_iou50']:.1%}",
            f"{m['false_alarms']:.1%}" if m["frames_without_face"] else "-",
            f"{m['centre_error']:.3f}" if m["centre_error"] is not None else "-",
            f"{m['size_error']:.3f}" if m["size_error"] is not None else "-",
        )
    Console().print(table)
    click.echo("centre and size error: medians, as a share of the true box's side", err=True)
