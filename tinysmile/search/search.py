"""`tinysmile search`: hardware-aware reduction of an architecture (best-first over cost).

The seeds' Algorithm 1, automated: train the baseline, then repeatedly take the
cheapest trained model whose int8 val AUC is at least beta, generate its single-step
reductions (`arch.reductions`), and train each one not seen before that costs no more
than its parent: MACs are known from the architecture, and arena, flash and instructions
are measured on the untrained model, so a costlier child is recorded as such and not
trained (nor counted in the trial budget) unless met again as the reduction of a dearer
model. A reduction whose AUC falls below beta is pruned (never expanded); one that does
not fit the board is recorded as over budget and still expanded (its reductions may
fit); a trial that fails is recorded with its message. The search stops at the first
model that fits the board and is at or under `max_cost`, or (`pareto`) goes on until
nothing is left to expand or the trial budget is spent, and returns the Pareto front of
cost against AUC; then the answer is the front's most accurate model within `max_cost`
(or, with no `max_cost`, its cheapest). The answer's architecture is written to best.json.

Every trial is trained, int8-quantized and costed in a process of its own (a fresh
process per trial, seeded, with TensorFlow's op determinism on and a fixed number of
threads), so its figures do not depend on where or next to what it ran: a local
process pool and Ray tasks give the same table. The search itself is deterministic
given the trials' results: children are trained in batches, one expansion at a time,
numbered before they start, each judged when it finishes (a verdict depends on the trial
and beta alone), and the batch goes on the frontier in its fixed order whatever order
its trials finished in.

The coordinator imports neither TensorFlow nor Ray unless asked to use Ray.
"""

from __future__ import annotations

import heapq
import json
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tinysmile.bundle import META_FILE, load_bundle
from tinysmile.errors import TinysmileError
from tinysmile.search.trials import (
    ACCEPTED,
    COSTLIER,
    DONE,
    FAILED,
    OVER_BUDGET,
    PRUNED,
    RUNNING,
    TRIALS_FILE,
    Trials,
    data_hash,
)
from tinysmile.train.arch import Arch, arch_key, arch_macs, load_arch, reductions

COSTS = ("instructions", "macs", "arena", "flash")
SEARCH_FILE = "search.json"
REPORT_PNG = "pareto.png"
BEST_FILE = "best.json"
# Settings a trial's figures depend on: a search folder refuses to continue with others.
TRIAL_SETTINGS = (
    "store",
    "data_hash",
    "baseline_key",
    "board",
    "cost",
    "seed",
    "epochs",
    "batch_size",
    "learning_rate",
    "augment",
    "calibration",
    "threads",
)
# Settings that decide which architectures the search reaches, with the value searches
# recorded before the setting existed had.
TREE_SETTINGS: dict[str, Any] = {"separable": False}


@dataclass
class Settings:
    store: str
    baseline: Arch
    board: str
    cost: str
    out: str
    target_auc: str = "0.8x"
    max_cost: int | None = None
    trials: int = 20
    epochs: int = 10
    seed: int = 0
    batch_size: int = 64
    learning_rate: float = 3e-3
    augment: float = 1.0
    calibration: int = 200
    pareto: bool = False
    separable: bool = False  # also try making each conv depthwise-separable
    workers: int = 1
    threads: int = 1  # per trial: the same number locally and on Ray, for the same figures
    ray: str | None = None
    mlflow: str | None = None  # a tracking URI: each judged trial is also an MLflow run
    data_hash: str = ""
    baseline_key: str = ""
    profile_board: str | None = None


def parse_target(text: str) -> tuple[float, bool]:
    """'0.8x' -> (0.8, relative to the baseline); '0.95' -> (0.95, absolute)."""
    t = text.strip().lower()
    relative = t.endswith("x")
    try:
        value = float(t[:-1] if relative else t)
    except ValueError:
        raise TinysmileError(
            f"--target-auc {text!r}: a fraction of the baseline's AUC (0.8x) or an AUC (0.95)"
        ) from None
    if not 0 < value <= (10 if relative else 1):
        raise TinysmileError(f"--target-auc {text!r} is out of range")
    return value, relative


def load_baseline(value: str) -> Arch:
    """A built-in name, an architecture JSON, a training run folder (its arch.json) or a
    bundle (the architecture its provenance records)."""
    p = Path(value)
    if p.is_dir():
        if (p / "arch.json").is_file():
            return load_arch(p / "arch.json")
        run = p / "run.json"
        if run.is_file():
            return load_arch(json.loads(run.read_text())["arch"])
        if (p / META_FILE).is_file():
            spec = load_bundle(p).meta.get("provenance", {}).get("arch_spec")
            if not spec:
                raise TinysmileError(f"{p}: the bundle does not record its architecture")
            return load_arch(spec)
        raise TinysmileError(
            f"{p}: not a training run or a bundle (no arch.json, run.json or {META_FILE})"
        )
    return load_arch(value)


# -- one trial, in a process of its own -------------------------------------------------


def _limit_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ[var] = str(threads)
    from tinysmile.train.train import import_tensorflow

    tf = import_tensorflow()
    # Before any op runs: afterwards TensorFlow refuses to change them.
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def run_trial(job: dict[str, Any]) -> dict[str, Any]:
    """Train, quantize to int8, score and cost one architecture; never raises (a failure
    is a result: status 'failed' and the message)."""
    t0 = time.perf_counter()
    try:
        return {**_run_trial(job), "seconds": round(time.perf_counter() - t0, 1)}
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, none stops the search
        msg = str(exc) if isinstance(exc, TinysmileError) else traceback.format_exc(limit=3)
        return {
            "status": FAILED,
            "message": msg.strip().splitlines()[-1][:500] if msg else type(exc).__name__,
            "seconds": round(time.perf_counter() - t0, 1),
        }


def _quiet_process(log: Path) -> None:
    """TensorFlow's C++ start-up lines and the converter's prints go to the trial's log:
    a search prints one line per trial, whatever the number of trial processes."""
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _run_trial(job: dict[str, Any]) -> dict[str, Any]:
    run_dir = Path(job["run_dir"])
    if run_dir.exists():
        shutil.rmtree(run_dir)  # what an interrupted attempt left
    if job.get("quiet", True):
        _quiet_process(run_dir / "trial.log")
    _limit_threads(int(job["threads"]))
    from tinysmile.boards import load_board
    from tinysmile.compiler.api import compile_in_memory
    from tinysmile.device.budget import check_budget, native_budget
    from tinysmile.train.quantize import quantize_run
    from tinysmile.train.train import train_run

    costlier = _costlier_than_parent(job, run_dir / "untrained")
    if costlier is not None:
        return costlier
    quiet = lambda *_: None
    train = train_run(
        job["store"],
        job["arch"],
        run_dir / "run",
        epochs=int(job["epochs"]),
        seed=int(job["seed"]),
        batch_size=int(job["batch_size"]),
        learning_rate=float(job["learning_rate"]),
        patience=int(job["epochs"]),
        augment_strength=float(job["augment"]),
        command=f"tinysmile search (trial {job['arch_key'][:12]})",
        verbose=0,
        say=quiet,
        deterministic=True,
    )
    bundle_dir = run_dir / "bundle"
    q = quantize_run(
        run_dir / "run",
        bundle_dir,
        calibration=int(job["calibration"]),
        name=f"trial_{job['arch_key'][:12]}",
        say=quiet,
    )
    report = compile_in_memory(bundle_dir / "model.tflite").report
    out: dict[str, Any] = {
        "status": DONE,
        "auc_float": float(q["val"]["float"]["auc"]),
        "auc_int8": float(q["val"]["int8"]["auc"]),
        **_costs(job, report, bundle_dir),
        "train_seconds": float(train["train_seconds"]),
        "fits": 1,
        "message": None,
    }
    board = load_board(job["board"])
    try:
        check_budget(native_budget(report, board), "the trial's model")
    except TinysmileError as exc:
        out["fits"], out["message"] = 0, str(exc)
    return out


def _costs(job: dict[str, Any], report: dict[str, Any], bundle_dir: Path) -> dict[str, int]:
    """A bundle's cost figures: MACs, arena and flash from the compiler's report and, for
    a search by instructions, one inference's count on the emulated board."""
    out = {
        "macs": int(report["macs"]),
        "arena": int(report["arena_bytes"]),
        "flash": int(report["weights_bytes"]),
    }
    if job["cost"] == "instructions":
        from tinysmile.device.commands import run_profile

        out["instructions"] = int(run_profile(str(bundle_dir), job["profile_board"])["total"])
    return out


# The emulator's instruction count moves by a few instructions with the weights' values
# (4 in 11.9 M for the tests' baseline, untrained against trained; none for the bundled
# default), so a step that leaves the count as it was (removing a batch norm, which int8
# conversion folds away) must not look costlier by them. Arena and flash are exact.
INSTRUCTIONS_SLACK = 0.001


def costlier(cost: str, child: int, parent: int) -> bool:
    """Whether a reduction measured untrained costs more than the trained model it
    reduces (beyond the instruction count's slack)."""
    slack = INSTRUCTIONS_SLACK if cost == "instructions" else 0.0
    return child - parent > slack * parent


def _costlier_than_parent(job: dict[str, Any], folder: Path) -> dict[str, Any] | None:
    """A reduction that costs more than the model it reduces is no reduction: measured
    on the untrained model (`quantize.untrained_bundle`), before any training is spent on
    it. Its result (status costlier, with the figures measured) or None to train it. MACs
    are known from the architecture: the coordinator never sends such a child."""
    parent_cost = job.get("parent_cost")
    if parent_cost is None or job["cost"] == "macs":
        return None
    from tinysmile.train.quantize import untrained_bundle

    report = untrained_bundle(job["arch"], job["store"], folder, seed=int(job["seed"]))
    figures = _costs(job, report, folder)
    shutil.rmtree(folder)
    cost = figures[job["cost"]]
    if not costlier(job["cost"], cost, parent_cost):
        return None
    return {
        "status": COSTLIER,
        **figures,
        "message": (
            f"{cost:,} {job['cost']} untrained, more than the {parent_cost:,} of the model "
            "it reduces: not trained"
        ),
    }


# -- running trials: a local process pool or Ray ----------------------------------------

Runner = Callable[[list[dict[str, Any]]], Iterator[tuple[dict[str, Any], dict[str, Any]]]]


def pool_runner(workers: int) -> Runner:
    def run(jobs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn: the children start clean (no state copied from this process), and one
        # task per child: no trial inherits TensorFlow state from another.
        with ProcessPoolExecutor(
            max_workers=max(1, min(workers, len(jobs))),
            mp_context=multiprocessing.get_context("spawn"),
            max_tasks_per_child=1,
        ) as pool:
            futures = {pool.submit(run_trial, job): job for job in jobs}
            for fut in as_completed(futures):
                job = futures[fut]
                try:
                    yield job, fut.result()
                except Exception as exc:  # noqa: BLE001 - a crashed worker is a failed trial
                    yield job, {"status": FAILED, "message": f"trial process died: {exc}"}

    return run


def ray_runner(address: str, threads: int) -> Runner:
    try:
        import ray
    except ImportError:
        raise TinysmileError(
            "--ray needs Ray: pip install 'tinysmile[ray]' (or pip install ray)"
        ) from None
    if not ray.is_initialized():
        try:
            ray.init(
                address=address,
                log_to_driver=False,
                logging_level="ERROR",
                include_dashboard=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise TinysmileError(f"--ray {address}: cannot join the cluster ({exc})") from None
    # max_calls=1: a fresh worker process per trial, as in the local pool; num_cpus pins
    # each trial to as many CPUs as it runs threads.
    remote = ray.remote(num_cpus=threads, max_calls=1, max_retries=0)(run_trial)

    def run(jobs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        refs = {remote.remote(job): job for job in jobs}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    result = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a lost worker is a failed trial
                    result = {"status": FAILED, "message": f"Ray task failed: {exc}"[:500]}
                yield refs[ref], result

    return run


# -- MLflow, for teams that already keep their runs there --------------------------------


def mlflow_logger(uri: str, experiment: str) -> Callable[[dict[str, Any]], None]:
    """One MLflow run per trial (params: the architecture and training settings; metrics:
    AUCs and costs; tags: step, verdict). A trial already logged with its status (a
    resumed search) is not logged again; one measured costlier and later trained as
    another model's reduction is logged both times."""
    try:
        import mlflow
    except ImportError:
        raise TinysmileError(
            "--mlflow needs MLflow: pip install mlflow-skinny (or mlflow)"
        ) from None
    mlflow.set_tracking_uri(uri)
    try:
        exp = mlflow.set_experiment(experiment)
    except Exception as exc:  # noqa: BLE001 - any tracking-server problem is the user's to fix
        raise TinysmileError(f"--mlflow {uri}: {exc}") from None

    def log(row: dict[str, Any]) -> None:
        key = row["arch_key"]
        found = mlflow.search_runs(
            [exp.experiment_id],
            filter_string=f"tags.arch_key = '{key}' AND tags.status = '{row['status']}'",
            output_format="list",
        )
        if found:
            return
        metrics = {
            k: float(row[k])
            for k in ("auc_float", "auc_int8", "macs", "arena", "flash", "instructions", "cost")
            if row.get(k) is not None
        }
        with mlflow.start_run(run_name=f"#{row['seq']} {row['step']}"[:250]):
            mlflow.set_tags(
                {
                    "arch_key": key,
                    "step": row["step"],
                    "parent": row["parent"] or "",
                    "status": row["status"],
                    "verdict": row["verdict"],
                }
            )
            mlflow.log_params(
                {"seed": row["seed"], "epochs": row["epochs"], "data_hash": row["data_hash"]}
            )
            mlflow.log_metrics(metrics)
            mlflow.log_dict(json.loads(row["arch"]), "arch.json")

    return log


# -- the search ---------------------------------------------------------------------------


@dataclass
class Outcome:
    search: str
    beta: float
    best: dict[str, Any] | None
    front: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    trained: int  # trials trained by this invocation (not reused from the database)
    stopped: str
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)


def cost_of(row: dict[str, Any], cost: str) -> int | None:
    v = row.get(cost)
    return None if v is None else int(v)


def pareto_front(rows: list[dict[str, Any]], cost: str) -> list[dict[str, Any]]:
    """Eligible trials (fit the board, AUC >= beta) that no other beats on both cost and
    AUC; cheapest first."""
    ok = [r for r in rows if r.get("verdict") == ACCEPTED and r.get("cost") is not None]
    ok.sort(key=lambda r: (r["cost"], -r["auc_int8"], r["seq"]))
    front, best_auc = [], -1.0
    for r in ok:
        if r["auc_int8"] > best_auc:
            front.append(r)
            best_auc = r["auc_int8"]
    return front


def _settings_dict(s: Settings) -> dict[str, Any]:
    d = asdict(s)
    d["baseline"] = s.baseline
    return d


def search(
    settings: Settings,
    runner: Runner | None = None,
    on_trial: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
) -> Outcome:
    """Run (or continue) a search; ``on_trial(row, progress)`` after each judged trial."""
    s = settings
    t_start = time.perf_counter()
    if s.cost not in COSTS:
        raise TinysmileError(f"--cost {s.cost!r}: choose from {', '.join(COSTS)}")
    if s.trials < 1:
        raise TinysmileError(f"--trials must be >= 1, got {s.trials}")
    if s.workers < 1 or s.threads < 1:
        raise TinysmileError("--workers and --threads must be >= 1")
    if s.epochs < 1:
        raise TinysmileError(f"--epochs must be >= 1, got {s.epochs}")
    from tinysmile.boards import load_board
    from tinysmile.train.dataset import is_store

    store = Path(s.store).resolve()
    if not is_store(store):
        raise TinysmileError(
            f"{store}: not a dataset store (create one with `tinysmile data import`)"
        )
    board = load_board(s.board)
    s.board = board.id
    if s.cost == "instructions":
        prof = board if board.emulated else load_board(None)
        if not prof.emulated:
            raise TinysmileError("--cost instructions needs an emulated board to profile on")
        s.profile_board = prof.id
    frac, relative = parse_target(s.target_auc)
    s.store = str(store)
    s.data_hash = data_hash(store)
    s.baseline = load_arch(s.baseline)
    s.baseline_key = arch_key(s.baseline)
    out = Path(s.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    s.out = str(out)
    search_id = str(out)
    trials_db = Trials(store / TRIALS_FILE)
    fixed = {k: getattr(s, k) for k in (*TRIAL_SETTINGS, *TREE_SETTINGS)}
    before = trials_db.search_settings(search_id)
    if before is not None:
        changed = [k for k in fixed if before.get(k, TREE_SETTINGS.get(k)) != fixed[k]]
        if changed:
            trials_db.close()
            raise TinysmileError(
                f"{out} holds a search with other {', '.join(changed)}: continue it with the "
                "same settings, or use another --out"
            )
    trials_db.add_search(search_id, str(out), fixed)
    (out / SEARCH_FILE).write_text(json.dumps(_settings_dict(s), indent=2, sort_keys=True) + "\n")
    if runner is None:
        runner = ray_runner(s.ray, s.threads) if s.ray else pool_runner(s.workers)
    parallel = s.workers
    if s.ray:
        import ray

        # As many trials at once as the cluster has CPUs for: what the ETA divides by.
        parallel = max(1, int(ray.cluster_resources().get("CPU", 1)) // s.threads)
    to_mlflow = mlflow_logger(s.mlflow, f"tinysmile search {out}") if s.mlflow else None

    trained = 0
    judged = 0
    seq = 0
    timings: list[float] = []

    def job_for(key: str, arch: Arch, parent_cost: int | None) -> dict[str, Any]:
        return {
            "arch_key": key,
            "arch": arch,
            "parent_cost": parent_cost,
            "store": s.store,
            "run_dir": str(out / "trials" / key[:16]),
            "seed": s.seed,
            "epochs": s.epochs,
            "batch_size": s.batch_size,
            "learning_rate": s.learning_rate,
            "augment": s.augment,
            "calibration": s.calibration,
            "board": s.board,
            "profile_board": s.profile_board,
            "cost": s.cost,
            "threads": s.threads,
        }

    def run_batch(
        items: list[tuple[str, Arch, str, str | None]],
        beta: float | None = None,
        parent_cost: int | None = None,
    ) -> list[dict[str, Any]]:
        """Train what the database lacks (or holds as interrupted); rows in item order.
        With ``beta``, each row is judged as soon as it is known (a trial read back from
        the database at once, a trained one when it finishes), so progress shows per
        trial; a verdict depends on the row and beta alone, so the order does not matter.

        A trial already measured is costlier or not against this batch's parent by its
        figures: one found costlier than a cheap model may reduce a dearer one met later
        (then it is trained, and becomes that one's child), and a search run again reads
        the same verdicts in the same batches whatever became of the row since."""
        nonlocal seq, trained
        todo = []
        judged_rows: dict[str, dict[str, Any]] = {}
        for key, arch, step, parent in items:
            row = trials_db.get(search_id, key)
            measured = None if row is None else row[s.cost]
            dearer = (
                measured is not None
                and parent_cost is not None
                and costlier(s.cost, int(measured), parent_cost)
            )
            if row is not None and beta is not None and dearer:
                # Costlier here; the row itself changes only if this is where it was found so.
                judged_rows[key] = (
                    judge(row, beta) if row["status"] == COSTLIER else {**row, "verdict": COSTLIER}
                )
            elif row is not None and row["status"] in (DONE, FAILED) and beta is not None:
                judged_rows[key] = judge(row, beta)
            elif row is None or row["status"] in (RUNNING, COSTLIER):
                job = job_for(key, arch, parent_cost)
                trials_db.start(
                    search_id,
                    key,
                    seq=seq,
                    parent=parent,
                    step=step,
                    arch=arch,
                    data_hash=s.data_hash,
                    seed=s.seed,
                    epochs=s.epochs,
                    run_dir=job["run_dir"],
                )
                todo.append(job)
            seq += 1
        if todo:
            t = time.perf_counter()
            for job, result in runner(todo):
                trials_db.finish(search_id, job["arch_key"], result)
                if result["status"] != COSTLIER:
                    trained += 1
                    timings.append(result.get("seconds") or (time.perf_counter() - t))
                if beta is not None:
                    row = trials_db.get(search_id, job["arch_key"])
                    judged_rows[job["arch_key"]] = judge(row, beta)  # type: ignore[arg-type]
        if beta is not None:
            return [judged_rows[key] for key, *_ in items]
        return [trials_db.get(search_id, key) for key, *_ in items]  # type: ignore[misc]

    def judge(row: dict[str, Any], beta: float) -> dict[str, Any]:
        nonlocal judged
        if row["status"] in (FAILED, COSTLIER):
            verdict = row["status"]
        elif row["auc_int8"] < beta:
            verdict = PRUNED
        elif not row["fits"]:
            verdict = OVER_BUDGET
        else:
            verdict = ACCEPTED
        cost = cost_of(row, s.cost)
        trials_db.judge(search_id, row["arch_key"], verdict, beta, cost)
        row.update(verdict=verdict, beta=beta, cost=cost)
        if verdict != COSTLIER:  # not trained: not one of the budget's trials
            judged += 1
        if to_mlflow is not None:
            to_mlflow(row)
        if on_trial is not None:
            left = max(0, s.trials - judged)
            mean = sum(timings) / len(timings) if timings else None
            eta = None if mean is None else mean * left / parallel
            on_trial(row, {"done": judged, "total": s.trials, "eta": eta})
        return row

    def answers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ok = [
            r
            for r in rows
            if r["verdict"] == ACCEPTED and (s.max_cost is None or r["cost"] <= s.max_cost)
        ]
        return sorted(ok, key=lambda r: (r["cost"], -r["auc_int8"], r["seq"]))

    try:
        (base,) = run_batch([(s.baseline_key, s.baseline, "baseline", None)])
        if base["status"] == FAILED:
            raise TinysmileError(f"the baseline failed: {base['message']}")
        beta = frac * base["auc_int8"] if relative else frac
        base = judge(base, beta)
        seen = {s.baseline_key}
        frontier: list[tuple[int, int, str]] = []
        archs: dict[str, Arch] = {s.baseline_key: s.baseline}
        best = None
        stopped = "nothing left to expand"
        if base["verdict"] != PRUNED:
            heapq.heappush(frontier, (base["cost"], base["seq"], s.baseline_key))
        if not s.pareto and answers([base]):
            best, stopped = base, "the baseline is under the target"
            frontier = []
        count = 1
        while frontier:
            if count >= s.trials:
                stopped = f"trial budget spent ({s.trials})"
                break
            parent_cost, _, key = heapq.heappop(frontier)
            kids = []
            parent_macs = arch_macs(archs[key])
            for step, child in reductions(archs[key], separable=s.separable):
                ck = arch_key(child)
                macs = arch_macs(child)
                # Dropping the first conv block runs the next conv at full resolution: more
                # MACs, not fewer. With MACs as the cost that is no reduction: not trained.
                if ck not in seen and not (s.cost == "macs" and macs > parent_macs):
                    kids.append((macs, ck, child, step))
            # Cheapest (by the MACs the data gives) first: with a trial budget left
            # over for only some of them, those are the ones worth training.
            kids.sort(key=lambda k: (k[0], k[1]))
            kids = kids[: s.trials - count]
            for _, ck, child, _ in kids:
                seen.add(ck)
                archs[ck] = child
            rows = run_batch(
                [(ck, child, step, key) for _, ck, child, step in kids], beta, parent_cost
            )
            count += sum(r["verdict"] != COSTLIER for r in rows)
            for r in rows:
                if r["verdict"] in (ACCEPTED, OVER_BUDGET):
                    heapq.heappush(frontier, (r["cost"], r["seq"], r["arch_key"]))
                elif r["verdict"] == COSTLIER:
                    seen.discard(r["arch_key"])  # it may reduce a dearer model met later
            found = answers(rows)
            if found and not s.pareto:
                best, stopped = found[0], "found a model under the target"
                break
        all_rows = trials_db.rows(search_id)
        front = pareto_front(all_rows, s.cost)
        if s.pareto and front:
            # No size target: the cheapest model that keeps beta. A size target: the most
            # accurate model within it (the front's last point at or under the target).
            best = front[0] if s.max_cost is None else (answers(front) or [None])[-1]
        write_best(out, best, all_rows)
        return Outcome(
            search=search_id,
            beta=beta,
            best=best,
            front=front,
            rows=all_rows,
            trained=trained,
            stopped=stopped,
            seconds=round(time.perf_counter() - t_start, 1),
            settings=_settings_dict(s),
        )
    finally:
        trials_db.close()


def lineage(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The trials from the baseline down to ``key``, one reduction step apart."""
    by_key = {r["arch_key"]: r for r in rows}
    if key not in by_key:
        raise TinysmileError(f"architecture {key[:12]} is not one of the search's trials")
    path = [by_key[key]]
    while path[-1]["parent"] is not None:
        path.append(by_key[path[-1]["parent"]])
    return path[::-1]


def write_best(out: Path, best: dict[str, Any] | None, rows: list[dict[str, Any]]) -> None:
    """BEST_FILE: the chosen trial's architecture, for `train --arch`, named after the
    search and described by its steps (removed when a search finds nothing, so a stale
    answer is never picked up)."""
    path = out / BEST_FILE
    if best is None:
        path.unlink(missing_ok=True)
        return
    arch = json.loads(best["arch"])
    steps = [r["step"] for r in lineage(rows, best["arch_key"])[1:]]
    if steps:
        arch["description"] = (
            f"Found by `tinysmile search` from {arch['name']}: " + "; ".join(steps) + "."
        )
        arch["name"] = f"{arch['name']}-s{best['arch_key'][:6]}"
    path.write_text(json.dumps(arch, indent=2) + "\n")


# -- report -------------------------------------------------------------------------------


def load_report(out: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    d = Path(out)
    if not (d / SEARCH_FILE).is_file():
        raise TinysmileError(f"{d}: not a search folder (no {SEARCH_FILE})")
    settings = json.loads((d / SEARCH_FILE).read_text())
    db = Path(settings["store"]) / TRIALS_FILE
    if not db.is_file():
        raise TinysmileError(f"{db}: the trials database is missing")
    with Trials(db) as t:
        rows = t.rows(settings["out"])
    return settings, rows


def running_seconds(spans: list[tuple[float, float]]) -> float:
    """Wall time during which at least one trial ran: the length of the union of the
    trials' (started, finished) spans. A search stopped and continued later counts the
    time it ran, not the pause between its runs."""
    total, end = 0.0, float("-inf")
    for start, finish in sorted(spans):
        if finish > end:
            total += finish - max(start, end)
            end = finish
    return total


def search_record(out: str | Path, arch: Arch) -> dict[str, Any]:
    """What a model card says of the search that found ``arch``: the settings, how long it
    took, the steps from the baseline and every trial (from the trials database)."""
    settings, rows = load_report(out)
    path = lineage(rows, arch_key(load_arch(arch)))
    front = {r["arch_key"] for r in pareto_front(rows, settings["cost"])}
    spans = [
        (r["started"], r["finished"])
        for r in rows
        if r["started"] is not None and r["finished"] is not None
    ]
    verdicts: dict[str, int] = {}
    for r in rows:
        r["verdict"] = r["verdict"] or r["status"]  # a trial not judged yet: its status
        verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
    seq_of = {r["arch_key"]: r["seq"] for r in rows}
    cols = ("seq", "step", "macs", "arena", "flash", "instructions", "auc_float", "auc_int8")
    cols += ("verdict", "train_seconds")
    return {
        "out": settings["out"],
        "baseline": settings["baseline"].get("name"),
        **{k: settings.get(k) for k in ("cost", "target_auc", "max_cost", "pareto", "epochs")},
        # Only when on, so that the records of searches without it stay as they were.
        **({"separable": True} if settings.get("separable") else {}),
        **{k: settings.get(k) for k in ("seed", "workers", "threads", "board")},
        "beta": path[0]["beta"],
        "trials": len(rows),
        "verdicts": verdicts,
        "wall_seconds": round(running_seconds(spans), 1) if spans else None,
        "trial_seconds": round(sum(r["seconds"] or 0 for r in rows), 1),
        "path": [{c: r[c] for c in ("step", "macs", "cost", "auc_int8")} for r in path],
        "table": [
            {
                **{c: r[c] for c in cols},
                "from": seq_of.get(r["parent"]),
                "front": r["arch_key"] in front,
            }
            for r in rows
        ],
    }


def plot_pareto(rows: list[dict[str, Any]], cost: str, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = {r["arch_key"] for r in pareto_front(rows, cost)}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {
        ACCEPTED: ("o", "tab:blue"),
        PRUNED: ("x", "tab:gray"),
        OVER_BUDGET: ("s", "tab:orange"),
    }
    for verdict, (marker, color) in styles.items():
        pts = [r for r in rows if r.get("verdict") == verdict and r.get("cost") is not None]
        if pts:
            ax.scatter(
                [r["cost"] for r in pts],
                [r["auc_int8"] for r in pts],
                marker=marker,
                color=color,
                label=verdict.replace("_", " "),
            )
    fr = sorted((r for r in rows if r["arch_key"] in front), key=lambda r: r["cost"])
    if fr:
        ax.step(
            [r["cost"] for r in fr],
            [r["auc_int8"] for r in fr],
            where="post",
            color="tab:red",
            label="Pareto front",
        )
        ax.scatter(
            [r["cost"] for r in fr],
            [r["auc_int8"] for r in fr],
            s=90,
            facecolors="none",
            edgecolors="tab:red",
        )
    betas = {r["beta"] for r in rows if r.get("beta") is not None}
    if betas:
        ax.axhline(max(betas), color="tab:gray", linestyle="--", linewidth=1, label="beta")
    costs = [r["cost"] for r in rows if r.get("cost") and r.get("auc_int8") is not None]
    if costs and max(costs) > 10 * min(costs):
        ax.set_xscale("log")  # a step that made a model dearer must not squash the rest
    ax.set_xlabel(cost)
    ax.set_ylabel("val AUC (int8)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
