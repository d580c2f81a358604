"""`tinysmile data ...`: import datasets into a store, show its statistics, preview
(augmented) samples as a contact sheet."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from tinysmile.data.votes import POLICIES
from tinysmile.errors import TinysmileError

FORMAT_NAMES = (
    "folder",
    "smilesmiled",
    "genki4k",
    "fer2013",
    "celeba",
    "votes",
    "captures",
    "unlabelled",
)


@click.group("data")
def data_group() -> None:
    """Dataset store: import, stats, preview."""


@data_group.command("import")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(FORMAT_NAMES))
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--store",
    "store_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Store folder (created if missing).",
)
@click.option(
    "--task", type=click.Choice(["smile", "attitude"]), default="smile", show_default=True
)
@click.option("--limit", type=int, default=None, help="Import a fixed subset of this many items.")
@click.option(
    "--classes",
    default=None,
    help="folder: FOLDER=LABEL,... when folder names are not class names.",
)
@click.option(
    "--split-by",
    type=click.Choice(["source", "hash"]),
    default=None,
    help="fer2013/celeba: the dataset's own split (default) or the content hash.",
)
@click.option(
    "--resolve",
    type=click.Choice(POLICIES),
    default=None,
    help="votes: majority of all raters, two raters with disagreements dropped, or two "
    "raters and a third where they disagree.",
)
@click.option(
    "--min-votes",
    type=int,
    default=None,
    help="votes: fewest decisive votes an image needs (majority).",
)
@click.option(
    "--images",
    type=click.Path(path_type=Path),
    default=None,
    help="votes: folder the CSV's image names are relative to (default: the CSV's folder).",
)
@click.option(
    "--agreement-csv",
    type=click.Path(path_type=Path),
    default=None,
    help="votes: write per-image votes, label and agreement here.",
)
@click.option("--detect-faces", is_flag=True, help="Store the largest Haar face box of each image.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--show-skipped",
    type=int,
    default=20,
    show_default=True,
    help="List at most this many skipped files.",
)
def import_cmd(
    fmt: str,
    path: Path,
    store_dir: Path,
    task: str,
    limit: int | None,
    classes: str | None,
    split_by: str | None,
    resolve: str | None,
    min_votes: int | None,
    images: Path | None,
    agreement_csv: Path | None,
    detect_faces: bool,
    as_json: bool,
    show_skipped: int,
) -> None:
    """Import a dataset at PATH into the store; re-running it adds nothing.

    FORMAT is one of: folder (one sub-folder per class), smilesmiled, genki4k
    (files/ + labels.txt, or GENKI-R2009a), fer2013 (the CSV), celeba (the root with
    list_attr_celeba.txt), votes (a CSV of rater answers), captures (a `tinysmile pi run
    --log` folder: each crop as an unlabelled sample, source "captures"), unlabelled (every
    image under PATH, stored without a label for `tinysmile label serve`). Corrupt images
    are skipped and listed; the import goes on.
    """
    from tinysmile.data.importers import import_dataset
    from tinysmile.data.store import Store

    if agreement_csv is not None and fmt != "votes":
        raise TinysmileError("--agreement-csv applies to the votes format only")
    with Store(store_dir) as store:
        report = import_dataset(
            fmt,
            path,
            store,
            task=task,
            limit=limit,
            progress=sys.stderr.isatty(),
            detect_faces=detect_faces,
            classes=classes,
            split_by=split_by,
            resolve=resolve,
            min_votes=min_votes,
            images=images,
            agreement_csv=agreement_csv,
        )
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    click.echo(
        f"{fmt} {report.path} -> {store_dir} (task {task}): {report.seen} seen, "
        f"{report.added} added, {report.present} already present, "
        f"{report.duplicates} duplicates ({report.conflicts} with a different label), "
        f"{len(report.skipped)} skipped"
        + (f", {len(report.dropped)} dropped (votes unresolved)" if report.dropped else "")
    )
    if report.agreement:
        click.echo(_agreement_line(report.agreement))
    for what, why in report.skipped[:show_skipped]:
        click.echo(f"  skipped {what}: {why}")
    if len(report.skipped) > show_skipped:
        click.echo(f"  ... and {len(report.skipped) - show_skipped} more skipped (see --json)")


def _agreement_line(a: dict) -> str:
    return (
        f"votes ({a['policy']}): {a['images']} images, {a['kept']} kept, "
        f"pairwise agreement {_pct(a['pairwise_agreement'])}, "
        f"estimated rater error {_pct(a['rater_error'])}, "
        f"estimated label error {_pct(a['label_error'])}"
    )


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


@data_group.command("stats")
@click.option("--store", "store_dir", required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def stats_cmd(store_dir: Path, as_json: bool) -> None:
    """Class balance per split, sources, rater agreement and duplicates."""
    from tinysmile.data.store import Store

    with Store(store_dir, create=False) as store:
        stats = store.stats()
    if as_json:
        click.echo(json.dumps(stats, indent=2))
    else:
        click.echo(format_stats(stats))


@data_group.command("preview")
@click.option("--store", "store_dir", type=click.Path(path_type=Path), default=None)
@click.option(
    "--folder",
    type=click.Path(path_type=Path),
    default=None,
    help="Preview images from a folder instead of a store.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Contact sheet PNG to write."
)
@click.option(
    "--task", type=click.Choice(["smile", "attitude"]), default="smile", show_default=True
)
@click.option("--split", type=click.Choice(["train", "val", "test"]), default=None)
@click.option("--count", type=int, default=16, show_default=True, help="How many images.")
@click.option(
    "--augment", "with_augment", is_flag=True, help="Show each image with augmented variants."
)
@click.option(
    "--variants", type=int, default=5, show_default=True, help="Augmented variants per image."
)
@click.option(
    "--transform", "transforms", multiple=True, help="Only these augmentations (repeatable)."
)
@click.option("--strength", type=float, default=1.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--size", type=int, default=64, show_default=True, help="Tile size in pixels.")
@click.option("--face-crop", type=click.Choice(["none", "haar"]), default="none", show_default=True)
def preview_cmd(
    store_dir: Path | None,
    folder: Path | None,
    out: Path,
    task: str,
    split: str | None,
    count: int,
    with_augment: bool,
    variants: int,
    transforms: tuple[str, ...],
    strength: float,
    seed: int,
    size: int,
    face_crop: str,
) -> None:
    """Write a contact sheet of store (or folder) images, optionally augmented."""
    from tinysmile.data.preview import preview_sheet

    if (store_dir is None) == (folder is None):
        raise TinysmileError("preview: give exactly one of --store DIR or --folder DIR")
    info = preview_sheet(
        out,
        store_dir=store_dir,
        folder=folder,
        task=task,
        split=split,
        count=count,
        augment_variants=variants if with_augment else 0,
        transforms=list(transforms) or None,
        strength=strength,
        seed=seed,
        tile=size,
        face_crop=face_crop,
    )
    click.echo(f"wrote {out}: {info['rows']} rows x {info['columns']} columns")


def format_stats(stats: dict) -> str:
    lines = [f"store {stats['store']}: {stats['samples']} samples"]
    for task, t in stats["tasks"].items():
        names = t["labels"]
        lines.append(
            f"task {task} ({t['samples']} samples"
            + (f", {t['without_label']} without a label yet" if t["without_label"] else "")
            + ")"
        )
        lines.append(
            "  "
            + "split".ljust(24)
            + "".join(n.rjust(10) for n in names)
            + "total".rjust(8)
            + "  balance"
        )
        for title, rows in (("", t["splits"]), ("source ", t["sources"])):
            for name, c in rows.items():
                share = " / ".join(
                    f"{100 * c[n] / c['total']:.0f}%" if c["total"] else "-" for n in names
                )
                lines.append(
                    "  "
                    + (title + name).ljust(24)
                    + "".join(str(c[n]).rjust(10) for n in names)
                    + str(c["total"]).rjust(8)
                    + "  "
                    + share
                )
        a = t["agreement"]
        if a["images_with_votes"]:
            lines.append(
                f"  rater agreement: {a['images_with_votes']} images with votes, "
                f"mean per-image agreement {_pct(a['mean_image_agreement'])}"
            )
        d = t["duplicates"]
        lines.append(
            f"  duplicates: {d['files']} files had the content of a stored sample "
            f"({d['conflicting_labels']} with a different label)"
        )
    for imp in stats["imports"]:
        lines.append(
            f"import #{imp['run']} {imp['format']} {imp['path']} ({imp['task']}): "
            f"{imp['added']} added, {imp['present']} present, {imp['duplicates']} duplicates, "
            f"{imp['skipped']} skipped" + (f", {imp['dropped']} dropped" if imp["dropped"] else "")
        )
        if "agreement" in imp:
            lines.append("  " + _agreement_line(imp["agreement"]))
    return "\n".join(lines)
