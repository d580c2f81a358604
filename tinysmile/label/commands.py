"""`tinysmile label ...`: rate images in a browser, rank suspect labels, report quality."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tinysmile.data.votes import POLICIES
from tinysmile.label.ratings import DEFAULT_RATERS, QUEUES

_store = click.option(
    "--store", "store_dir", required=True, type=click.Path(path_type=Path), help="Store folder."
)


@click.group("label")
def label_group() -> None:
    """Raters and label quality: the rating page, suspects, statistics."""


@label_group.command("serve")
@_store
@click.option("--queue", type=click.Choice(QUEUES), default="unlabelled", show_default=True)
@click.option(
    "--task",
    type=click.Choice(["smile", "attitude"]),
    default="smile",
    show_default=True,
    help="What the raters answer: smile (y smile, n no smile) or attitude (1 negative,"
    " 2 neutral, 3 positive); both also take u (can't tell) and space (skip).",
)
@click.option(
    "--raters-per-image",
    type=int,
    default=None,
    help=f"Votes an image needs (majority policy) [store's setting, else {DEFAULT_RATERS}].",
)
@click.option(
    "--policy",
    type=click.Choice(POLICIES),
    default=None,
    help="How votes become labels [store's setting, else majority]; a change re-resolves "
    "every rated image.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8765, show_default=True, help="0: any free port.")
@click.option(
    "--token",
    default=None,
    help="Require this token in every request (made up and printed when --host is not "
    "a loopback address).",
)
@click.option(
    "--audit-size",
    type=int,
    default=200,
    show_default=True,
    help="audit: labelled images drawn at random for the audit.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="audit: the draw's seed.")
def serve_cmd(
    store_dir: Path,
    queue: str,
    task: str,
    raters_per_image: int | None,
    policy: str | None,
    host: str,
    port: int,
    token: str | None,
    audit_size: int,
    seed: int,
) -> None:
    """Serve the rating page: raters answer one image at a time with hotkeys."""
    from tinysmile.data.store import Store
    from tinysmile.label.ratings import LabelConfig, Ratings, ensure_audit, get_config, set_config
    from tinysmile.label.server import serve

    store = Store(store_dir, create=False)
    try:
        old = get_config(store)
        config = LabelConfig(
            policy=policy or old.policy,
            raters=raters_per_image if raters_per_image is not None else old.raters,
        )
        if set_config(store, config):
            click.echo(f"label: policy now {config.policy}, {config.raters} rater(s) per image")
        if queue == "audit":
            n = ensure_audit(store, audit_size, seed, task)
            click.echo(f"label: audit sample of {n} labelled images (seed {seed})")
        ratings = Ratings(store, queue, config, task)
        serve(ratings, host=host, port=port, token=token, say=lambda s: click.echo(s))
    finally:
        store.close()


@label_group.command("stats")
@_store
@click.option("--json", "as_json", is_flag=True)
def stats_cmd(store_dir: Path, as_json: bool) -> None:
    """Votes per rater and speed, agreement (kappa), audited label error, per-source counts."""
    from tinysmile.data.store import Store
    from tinysmile.label.stats import format_label_stats, label_stats

    with Store(store_dir, create=False) as store:
        stats = label_stats(store)
    click.echo(json.dumps(stats, indent=2) if as_json else format_label_stats(stats))


@label_group.command("suspects")
@_store
@click.option("--folds", type=int, default=3, show_default=True)
@click.option("--epochs", type=int, default=3, show_default=True)
@click.option("--arch", default="embedded3", show_default=True)
@click.option(
    "--limit", type=int, default=None, help="Use a fixed subset of this many labelled images."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option(
    "--top", type=int, default=200, show_default=True, help="Queue this many, most suspect first."
)
@click.option("--json", "as_json", is_flag=True)
def suspects_cmd(
    store_dir: Path,
    folds: int,
    epochs: int,
    arch: str,
    limit: int | None,
    seed: int,
    batch_size: int,
    top: int,
    as_json: bool,
) -> None:
    """Rank the labels the model doubts (cleanlab on out-of-fold predictions) for raters."""
    from tinysmile.label.suspects import find_suspects

    report = find_suspects(
        store_dir,
        folds=folds,
        epochs=epochs,
        arch=arch,
        limit=limit,
        seed=seed,
        top=top,
        batch_size=batch_size,
        say=lambda s: click.echo(s, err=True),
    )
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(
            f"suspects: {report['suspects']} of {report['images']} labelled images queued, most "
            f"suspect first; cleanlab estimates {report['flagged']} labels are wrong "
            f"(out-of-fold AUC {report['oof_auc']:.3f}, {folds} folds x {epochs} epochs). "
            "Rate them with `tinysmile label serve --queue suspects`."
        )
