"""`tinysmile search`: the hardware-aware architecture search's command.

Only click and the standard library at import time; the search imports TensorFlow in its
trials."""

from __future__ import annotations

from pathlib import Path

import click

from tinysmile.errors import TinysmileError


def _fmt_cost(v) -> str:
    return "-" if v is None else f"{int(v):,}"


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA ?"
    m, s = divmod(round(seconds), 60)
    return f"ETA {m}m{s:02d}s" if m else f"ETA {s}s"


def _trial_line(row: dict, progress: dict, cost: str) -> str:
    done, total = progress["done"], progress["total"]
    bar_w = 20
    filled = min(bar_w, round(bar_w * done / max(total, 1)))
    bar = "#" * filled + "." * (bar_w - filled)
    if row["status"] in ("failed", "costlier"):
        what = f"{row['status']}: {row['message']}"
    else:
        what = (
            f"{cost} {_fmt_cost(row.get(cost))}, AUC int8 {row['auc_int8']:.4f} "
            f"(float {row['auc_float']:.4f}), {row['verdict'].replace('_', ' ')}"
        )
    return (
        f"[{bar}] {done}/{total} {_fmt_eta(progress['eta'])}  #{row['seq']} "
        f"{row['step']} ({row['arch_key'][:8]}): {what}"
    )


def _report_table(settings: dict, rows: list[dict]):
    from rich.table import Table

    from tinysmile.search.search import pareto_front

    cost = settings["cost"]
    front = {r["arch_key"] for r in pareto_front(rows, cost)}
    t = Table(title=f"search {settings['out']} ({len(rows)} trials, cost {cost})")
    seq_of = {r["arch_key"]: r["seq"] for r in rows}
    for col in (
        "#",
        "from",
        "step",
        "arch",
        "MACs",
        "arena",
        "flash",
        "instructions",
        "AUC float",
        "AUC int8",
        "verdict",
        "train s",
    ):
        t.add_column(col, justify="left" if col in ("step", "arch", "verdict") else "right")
    for r in rows:
        done = r["auc_int8"] is not None  # trained and scored
        verdict = (r["verdict"] or r["status"]).replace("_", " ")
        if r["arch_key"] in front:
            verdict += " *"
        t.add_row(
            str(r["seq"]),
            "-" if r["parent"] is None else str(seq_of.get(r["parent"], "?")),
            r["step"],
            r["arch_key"][:8],
            _fmt_cost(r["macs"]),
            _fmt_cost(r["arena"]),
            _fmt_cost(r["flash"]),
            _fmt_cost(r["instructions"]),
            f"{r['auc_float']:.4f}" if done else "-",
            f"{r['auc_int8']:.4f}" if done else "-",
            verdict,
            f"{r['train_seconds']:.0f}" if r["train_seconds"] is not None else "-",
        )
    return t


@click.command("search")
@click.option("--data", type=click.Path(path_type=Path), help="Dataset store.")
@click.option(
    "--baseline",
    default="embedded3",
    show_default=True,
    help=(
        "alexnet, reduced-alexnet, embedded3, an architecture JSON, a training run folder or "
        "a bundle."
    ),
)
@click.option("--board", "board_id", default=None, help="Board whose budget trials must fit.")
@click.option(
    "--cost",
    type=click.Choice(["instructions", "macs", "arena", "flash"]),
    default="macs",
    show_default=True,
    help="What to reduce: MACs (from the architecture), arena or flash bytes (the "
    "compiler's report) or the instructions of one inference on the emulated board. A step "
    "that costs more than the model it reduces is not trained (arena, flash and "
    "instructions: measured untrained, recorded as costlier).",
)
@click.option(
    "--target-auc",
    default="0.8x",
    show_default=True,
    help="beta: a fraction of the baseline's int8 val AUC (0.8x) or an AUC (0.95).",
)
@click.option("--max-cost", type=int, default=None, help="Size target for the chosen cost.")
@click.option("--trials", type=int, default=20, show_default=True, help="Most trials to train.")
@click.option("--epochs", type=int, default=10, show_default=True, help="Epochs per trial.")
@click.option("--seed", type=int, default=0, show_default=True, help="Every trial's seed.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--learning-rate", type=float, default=3e-3, show_default=True)
@click.option(
    "--augment",
    type=float,
    default=1.0,
    show_default=True,
    help="Augmentation strength, serving-skew transforms included (0: none).",
)
@click.option(
    "--calibration",
    type=int,
    default=200,
    show_default=True,
    help="Representative images for each trial's int8 ranges.",
)
@click.option(
    "--pareto",
    is_flag=True,
    help="Go on past the target and report the whole front; the answer is then the most"
    " accurate model within --max-cost.",
)
@click.option(
    "--separable",
    is_flag=True,
    help="Also try making each conv (of more than one input channel) depthwise-separable:"
    " a depthwise conv, then a 1x1 conv.",
)
@click.option("--workers", type=int, default=1, show_default=True, help="Local trial processes.")
@click.option(
    "--threads", type=int, default=1, show_default=True, help="CPU threads (Ray: CPUs) per trial."
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="auto",
    default=None,
    help="Run trials as Ray tasks on a cluster (ADDRESS, or the running one).",
)
@click.option("--mlflow", "mlflow_uri", default=None, help="Also log each trial to MLflow (URI).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Search folder: settings, each trial's run and bundle, and best.json (the answer's"
    " architecture, for `train --arch`).",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Print a search folder's trial table and write its Pareto plot; train nothing.",
)
def search_cmd(
    data: Path | None,
    baseline: str,
    board_id: str | None,
    cost: str,
    target_auc: str,
    max_cost: int | None,
    trials: int,
    epochs: int,
    seed: int,
    batch_size: int,
    learning_rate: float,
    augment: float,
    calibration: int,
    pareto: bool,
    separable: bool,
    workers: int,
    threads: int,
    ray_address: str | None,
    mlflow_uri: str | None,
    out: Path | None,
    report_dir: Path | None,
) -> int:
    """Hardware-aware architecture search: reduce BASELINE best-first over cost while its
    int8 val AUC stays >= beta, within the board's budget; every trial in STORE/trials.sqlite."""
    from rich.console import Console

    from tinysmile.search import search as S

    if report_dir is not None:
        settings, rows = S.load_report(report_dir)
        Console(highlight=False, width=160).print(_report_table(settings, rows))
        png = Path(report_dir) / S.REPORT_PNG
        S.plot_pareto(rows, settings["cost"], png, f"{settings['baseline']['name']} search")
        click.echo(f"* Pareto front; plot written to {png}")
        return 0
    if data is None or out is None:
        raise TinysmileError("search needs --data STORE and --out DIR (or --report DIR)")
    if calibration < 1 or batch_size < 1:
        raise TinysmileError("--calibration and --batch-size must be >= 1")
    settings = S.Settings(
        store=str(data),
        baseline=S.load_baseline(baseline),
        board=board_id,
        cost=cost,
        out=str(out),
        target_auc=target_auc,
        max_cost=max_cost,
        trials=trials,
        epochs=epochs,
        seed=seed,
        batch_size=batch_size,
        learning_rate=learning_rate,
        augment=augment,
        calibration=calibration,
        pareto=pareto,
        separable=separable,
        workers=workers,
        threads=threads,
        ray=ray_address,
        mlflow=mlflow_uri,
    )
    result = S.search(
        settings, on_trial=lambda row, p: click.echo(_trial_line(row, p, cost), nl=True)
    )
    click.echo(
        f"{result.stopped}; beta {result.beta:.4f}; {len(result.rows)} trials recorded "
        f"({result.trained} trained now) in {result.seconds:.0f} s"
    )
    if result.best is None:
        click.echo("no trial fits the board under the target with AUC >= beta")
        return 1
    b = result.best
    click.echo(
        f"best: #{b['seq']} {b['step']} ({b['arch_key'][:8]}): {cost} {_fmt_cost(b['cost'])}, "
        f"AUC int8 {b['auc_int8']:.4f}; run in {b['run_dir']}; its architecture in "
        f"{Path(result.settings['out']) / S.BEST_FILE} (train it with `tinysmile train --arch`)"
    )
    if pareto:
        click.echo(
            "Pareto front: "
            + "; ".join(
                f"#{r['seq']} {_fmt_cost(r['cost'])} / {r['auc_int8']:.4f}" for r in result.front
            )
        )
    return 0
