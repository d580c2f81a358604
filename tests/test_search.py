"""Architectures as data, their reductions, and `tinysmile search`.

The search loop is checked twice: with a stand-in for the trial process (no TensorFlow:
results are a fixed function of the architecture, so the expected verdicts can be
worked out by hand), and end to end on a few hundred SMILEsmileD images, where the
trials really train, quantize and get costed: locally, after a kill, and on Ray.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinysmile.errors import TinysmileError
from tinysmile.search.trials import TABLE_FIELDS, TRIALS_FILE
from tinysmile.train.arch import arch_key, arch_macs, load_arch, reductions

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "fixtures" / "search_tiny.json"
SMILESMILED = Path(
    os.environ.get("TINYSMILE_SMILESMILED", REPO.parent / "shared" / "datasets" / "smilesmiled")
)


# -- architectures as data ----------------------------------------------------------------


def test_builtin_archs_are_json_with_exact_costs():
    emb = load_arch("embedded3")
    assert [layer["type"] for layer in emb["layers"]] == [
        "conv", "batch_norm", "relu", "max_pool", "conv", "max_pool", "conv", "max_pool",
        "flatten", "dropout", "dense",
    ]  # fmt: skip
    # conv1 5x5/2 1->8 on 32x32, conv2 3x3 8->24 on 16x16, conv3 3x3 24->32 on 8x8, 512->1.
    assert arch_macs(emb) == 32 * 32 * 8 * 25 + 16 * 16 * 24 * 72 + 8 * 8 * 32 * 9 * 24 + 512
    # AlexNet at 64x64: conv1 11x11/4 -> 16x16x48, pool -> 8x8, conv2 5x5 -> 8x8x128,
    # pool -> 4x4, conv3-5 3x3 on 4x4, pool -> 2x2x128 = 512, fc 512, 512, 1.
    alex = 16 * 16 * 48 * 121 + 8 * 8 * 128 * 25 * 48 + 4 * 4 * 9 * (192 * 128 + 192 * 192)
    alex += 4 * 4 * 9 * 128 * 192 + 512 * 512 + 512 * 512 + 512
    assert arch_macs(load_arch("alexnet")) == alex
    assert len({arch_key(load_arch(a)) for a in ("alexnet", "reduced-alexnet", "embedded3")}) == 3


def test_the_default_bundles_arch_json_builds_its_layers():
    # The architecture the bundled default records (the search's answer, as JSON) builds
    # the layers its card lists: names, kinds, shapes, MACs, parameters.
    pytest.importorskip("tensorflow")
    from tinysmile.train.arch import build_model, export_model, layer_costs

    meta = json.loads((REPO / "tinysmile/models/smile_default/bundle.json").read_text())
    arch = load_arch(meta["provenance"]["arch_spec"])
    costs = [c.to_dict() for c in layer_costs(export_model(build_model(arch)))]
    assert costs == meta["layers"]


def test_an_arch_file_trains_like_a_name(tmp_path):
    doc = json.loads((REPO / "tinysmile/train/archs/embedded3.json").read_text())
    (tmp_path / "e3.json").write_text(json.dumps(doc))
    assert arch_key(load_arch(tmp_path / "e3.json")) == arch_key(load_arch("embedded3"))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["layers"].append({"type": "lstm"}), "'type' must be one of"),
        (lambda d: d["layers"].pop(8), "exactly one flatten"),
        (lambda d: d["layers"][-1].update(units=2), "1 unit with a sigmoid"),
        (lambda d: d["layers"][0].update(filters=0), "filters must be a positive integer"),
        (lambda d: d["layers"][0].update(filter=3), "unknown field"),
        (lambda d: d.update(input={"height": 4, "width": 4}), "leaves no pixels"),
    ],
)
def test_bad_arch_files_are_one_line_errors(tmp_path, change, message):
    doc = json.loads((REPO / "tinysmile/train/archs/embedded3.json").read_text())
    change(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(TinysmileError, match=message):
        load_arch(path)


def test_train_cli_refuses_a_bad_arch_file(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    proc = subprocess.run(
        [sys.executable, "-m", "tinysmile", "train", "--arch", str(tmp_path / "bad.json")]
        + ["--data", str(tmp_path), "--out", str(tmp_path / "r")],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "not a JSON architecture" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_reductions_of_embedded3_are_single_steps():
    base = load_arch("embedded3")
    steps = dict(reductions(base, separable=True))
    assert sorted(steps) == sorted(
        [
            "halve conv1 (8 -> 4 filters)",
            "halve conv2 (24 -> 12 filters)",
            "halve conv3 (32 -> 16 filters)",
            "drop the conv1 block",
            "drop the conv2 block",
            "drop the conv3 block",
            "conv1 stride 2 -> 3",
            "input 64x64 -> 48x48",
            "remove bn1",
            "make conv2 depthwise-separable",
            "make conv3 depthwise-separable",
        ]
    )  # conv1 sees one channel: a depthwise conv of it would be a 1-filter conv
    assert set(dict(reductions(base))) == set(steps) - {
        "make conv2 depthwise-separable", "make conv3 depthwise-separable"
    }  # fmt: skip
    names = lambda a: [layer["name"] for layer in a["layers"]]
    assert names(steps["drop the conv2 block"]) == [
        "conv1", "bn1", "relu1", "pool1", "conv3", "pool3", "flatten", "dropout", "output"
    ]  # fmt: skip
    no_bn = steps["remove bn1"]
    assert "bn1" not in names(no_bn)
    assert no_bn["layers"][0]["bias"] is True  # the batch norm supplied conv1's offset
    assert steps["input 64x64 -> 48x48"]["input"] == {"height": 48, "width": 48}
    # conv2 halved: 32*32*8*25 + 16*16*12*(9*8) + 8*8*32*(9*12) + 512.
    assert arch_macs(steps["halve conv2 (24 -> 12 filters)"]) == 647_680
    keys = {arch_key(a) for a in steps.values()}
    assert len(keys) == len(steps) and arch_key(base) not in keys
    # A hidden dense layer is halved too (reduced-alexnet's fc6).
    red = dict(reductions(load_arch("reduced-alexnet")))
    assert red["halve fc6 (64 -> 32 units)"]["layers"][-3]["units"] == 32


def test_a_depthwise_separable_conv_is_one_block_with_its_own_cost():
    sep = dict(reductions(load_arch("embedded3"), True))["make conv2 depthwise-separable"]
    layers = {layer["name"]: layer for layer in sep["layers"]}
    assert [layer["name"] for layer in sep["layers"]][4:7] == ["conv2_dw", "conv2", "pool2"]
    assert layers["conv2_dw"] == {
        "type": "depthwise_conv", "name": "conv2_dw", "kernel": 3, "stride": 1,
        "padding": "same", "bias": False, "activation": None,
    }  # fmt: skip
    assert (layers["conv2"]["kernel"], layers["conv2"]["filters"]) == (1, 24)
    assert layers["conv2"]["activation"] == "relu"
    # conv2 3x3 8->24 on 16x16 becomes a 3x3 depthwise on 8 channels and a 1x1 8->24.
    conv2 = 16 * 16 * 8 * 9 + 16 * 16 * 8 * 24
    assert arch_macs(sep) == 32 * 32 * 8 * 25 + conv2 + 8 * 8 * 32 * 9 * 24 + 512
    steps = dict(reductions(sep, separable=True))
    # Dropping the block drops the depthwise conv, its 1x1 conv and the pool together.
    assert [layer["name"] for layer in steps["drop the conv2_dw block"]["layers"]] == [
        "conv1", "bn1", "relu1", "pool1", "conv3", "pool3", "flatten", "dropout", "output"
    ]  # fmt: skip
    # Halving the separable conv's filters halves the 1x1 conv; the 1x1 conv is not made
    # separable again.
    half = steps["halve conv2 (24 -> 12 filters)"]
    assert [layer.get("filters") for layer in half["layers"][4:6]] == [None, 12]
    assert "make conv2 depthwise-separable" not in steps
    both = steps["make conv3 depthwise-separable"]
    assert arch_macs(both) == arch_macs(sep) - 8 * 8 * 32 * 9 * 24 + 8 * 8 * 24 * (9 + 32)


def _separable_e3(load_arch, reductions):
    arch = dict(reductions(load_arch("embedded3"), True))["make conv3 depthwise-separable"]
    return dict(reductions(arch, True))["make conv2 depthwise-separable"]


def test_a_depthwise_separable_arch_compiles_bit_exact(tmp_path):
    # The arch's own Keras layers, converted to full int8: the C compiler runs the
    # DEPTHWISE_CONV_2D and 1x1 CONV_2D they become byte for byte as LiteRT does.
    pytest.importorskip("tensorflow")
    from models import cached
    from parity import assert_parity

    from tinysmile.train.arch import build_model, layer_costs

    def build(tf, x):
        from test_search import _separable_e3

        from tinysmile.train.arch import _keras_layer, load_arch, reductions

        for layer in _separable_e3(load_arch, reductions)["layers"]:
            x = _keras_layer(tf.keras, layer)(x)
        return x

    sep = _separable_e3(load_arch, reductions)
    # The layers come from `reductions`, not from the build function's source: the cache
    # is keyed by them too.
    model = cached("e3_separable", build, (1, 64, 64, 1), depends=json.dumps(sep, sort_keys=True))
    report = assert_parity(model, tmp_path)
    kinds = [layer["kind"] for layer in report["layers"]]
    assert kinds.count("DEPTHWISE_CONV_2D") == 2 and kinds.count("CONV_2D") == 3
    # The compiler's MAC count of the converted model, Keras' shapes and the arch data
    # agree (the dense layer's 512 MACs are FULLY_CONNECTED's).
    assert report["macs"] == arch_macs(sep) == 335_872
    assert sum(c.macs for c in layer_costs(build_model(sep))) == arch_macs(sep)


# -- the search loop, with a stand-in for the trial process -------------------------------


class FakeTrials:
    """Results as a fixed function of the architecture: AUC falls by 0.05 per 2x fewer
    MACs below the baseline's, one architecture fails, and anything over 1.5 M MACs does
    not fit. Records every job it is given."""

    def __init__(
        self,
        base_macs: int,
        fail_key: str | None = None,
        stop_after: int | None = None,
        probe: bool = False,
        arena_of=None,
    ):
        self.base_macs = base_macs
        self.fail_key = fail_key
        self.stop_after = stop_after
        # As the trial process does: a child costlier than its parent is measured, not
        # trained. The stand-in's arena is the largest activation, in elements.
        self.probe = probe
        self.arena_of = arena_of or self.arena
        self.jobs: list[str] = []
        self.parent_costs: dict[str, int | None] = {}

    @staticmethod
    def arena(arch) -> int:
        import math

        from tinysmile.train.arch import shapes

        return max(math.prod(shape) for shape, _ in shapes(arch))

    def auc(self, macs: int) -> float:
        import math

        return round(0.9 - 0.05 * math.log2(self.base_macs / macs), 6)

    def __call__(self, jobs):
        for job in jobs:
            if self.stop_after is not None and len(self.jobs) >= self.stop_after:
                raise KeyboardInterrupt  # the search killed mid-batch
            self.jobs.append(job["arch_key"])
            self.parent_costs[job["arch_key"]] = job["parent_cost"]
            arena = self.arena_of(job["arch"])
            if self.probe and job["parent_cost"] is not None and arena > job["parent_cost"]:
                yield job, {"status": "costlier", "arena": arena, "message": "more arena"}
                continue
            if job["arch_key"] == self.fail_key:
                yield job, {"status": "failed", "message": "CONV_2D overflows", "seconds": 0.1}
                continue
            macs = arch_macs(job["arch"])
            yield (
                job,
                {
                    "status": "done",
                    "auc_float": self.auc(macs),
                    "auc_int8": self.auc(macs),
                    "macs": macs,
                    "arena": arena,
                    "flash": 1000,
                    "fits": int(macs <= 1_500_000),
                    "message": None if macs <= 1_500_000 else "needs more RAM",
                    "train_seconds": 1.0,
                    "seconds": 1.0,
                },
            )


@pytest.fixture
def store(tmp_path):
    """A store with two images, enough for the search's data hash (the stand-in trains
    nothing)."""
    import cv2
    import numpy as np

    from tinysmile.data.importers import import_dataset
    from tinysmile.data.store import Store

    src = tmp_path / "src"
    for label in ("smile", "no_smile"):
        (src / label).mkdir(parents=True)
        img = np.full((8, 8), 60 if label == "smile" else 200, dtype=np.uint8)
        cv2.imwrite(str(src / label / "a.png"), img)
    with Store(tmp_path / "store") as s:
        import_dataset("folder", src, s)
    return tmp_path / "store"


def _settings(store, out, **kw):
    from tinysmile.search.search import Settings

    base = {
        "store": str(store),
        "baseline": load_arch("embedded3"),
        "board": "qemu-cortex-m4",
        "cost": "macs",
    }
    base.update(kw)
    return Settings(out=str(out), **base)


def _table(rows):
    return [tuple(r[f] for f in TABLE_FIELDS) for r in rows]


def test_search_prunes_by_beta_and_goes_on_past_failures(store, tmp_path):
    from tinysmile.search.search import search

    base = load_arch("embedded3")
    kids = dict(reductions(base))
    fail = arch_key(kids["conv1 stride 2 -> 3"])
    fake = FakeTrials(arch_macs(base), fail_key=fail)
    # beta 0.95 x 0.9 = 0.855: a child may lose a little under one halving of MACs.
    res = search(_settings(store, tmp_path / "s", target_auc="0.95x", trials=30, pareto=True), fake)
    assert res.beta == pytest.approx(0.855)
    rows = {r["arch_key"]: r for r in res.rows}
    assert len(fake.jobs) == len(set(fake.jobs)) == len(rows)  # nothing trained twice
    assert rows[fail]["verdict"] == "failed" and rows[fail]["message"] == "CONV_2D overflows"
    for r in res.rows:
        if r["status"] == "failed":
            continue
        if r["auc_int8"] < 0.855:
            assert r["verdict"] == "pruned"
        else:
            assert r["verdict"] == ("accepted" if r["macs"] <= 1_500_000 else "over_budget")
    expanded = {r["parent"] for r in res.rows if r["parent"]}
    assert all(rows[k]["verdict"] in ("accepted", "over_budget") for k in expanded)
    assert not any(rows[k]["verdict"] in ("pruned", "failed") for k in expanded)
    # The search went on after the failure and past pruned children.
    assert {r["verdict"] for r in res.rows} >= {"accepted", "pruned", "failed"}
    # The front: accepted only, cost up, AUC up.
    front = res.front
    assert front and all(r["verdict"] == "accepted" for r in front)
    assert [r["cost"] for r in front] == sorted(r["cost"] for r in front)
    assert [r["auc_int8"] for r in front] == sorted(r["auc_int8"] for r in front)


def test_search_stops_at_the_first_model_under_the_target(store, tmp_path):
    from tinysmile.search.search import search

    base = load_arch("embedded3")
    fake = FakeTrials(arch_macs(base))
    res = search(_settings(store, tmp_path / "s", max_cost=700_000, trials=30), fake)
    # The baseline (1,090,048 MACs) is above the target; its cheapest children that stay
    # within 0.8 x 0.9 = 0.72 are trained in one batch, and the cheapest of those under
    # 700,000 MACs is the answer: conv1 stride 3 (478,816 MACs).
    assert res.stopped == "found a model under the target"
    assert res.best["step"] == "conv1 stride 2 -> 3" and res.best["macs"] == 478_816
    # Every reduction but one was trained: dropping the conv1 block runs conv2 on the
    # 64x64 input, 7,970,816 MACs, dearer than the baseline, so no reduction of the cost.
    steps = dict(reductions(base))
    assert arch_macs(steps["drop the conv1 block"]) == 7_970_816
    assert sorted(r["step"] for r in res.rows[1:]) == sorted(set(steps) - {"drop the conv1 block"})
    # Costed by arena, MACs say nothing of it: the trial process is sent the child with
    # its parent's cost, to measure it before training.
    fake3 = FakeTrials(arch_macs(base))
    res3 = search(_settings(store, tmp_path / "a", cost="arena", max_cost=500, trials=30), fake3)
    child = arch_key(steps["drop the conv1 block"])
    assert child in {r["arch_key"] for r in res3.rows}
    assert fake3.parent_costs[child] == FakeTrials.arena(base) == res3.rows[0]["cost"]
    # An impossible beta prunes every child, and nothing is expanded past them.
    fake2 = FakeTrials(arch_macs(base))
    res2 = search(_settings(store, tmp_path / "t", target_auc="0.91", trials=30), fake2)
    assert res2.best is None
    assert [r["verdict"] for r in res2.rows] == ["pruned"]  # the baseline itself (0.9)
    # The answer's architecture is in best.json, ready for `train --arch`; none, no file.
    assert arch_key(load_arch(tmp_path / "s" / "best.json")) == res.best["arch_key"]
    assert not (tmp_path / "t" / "best.json").exists()


def test_a_costlier_child_is_recorded_not_expanded_and_outside_the_budget(store, tmp_path):
    from tinysmile.search.search import search

    base = load_arch("embedded3")
    steps = dict(reductions(base))
    costly = {k for k, a in steps.items() if FakeTrials.arena(a) > FakeTrials.arena(base)}
    # Dropping the conv1 block runs conv2 on the 64x64 input: a larger activation.
    assert costly == {"drop the conv1 block"}
    fake = FakeTrials(arch_macs(base), probe=True)
    budget = len(steps) + 2  # the baseline, its reductions but one, two more
    res = search(_settings(store, tmp_path / "s", cost="arena", pareto=True, trials=budget), fake)
    rows = {r["arch_key"]: r for r in res.rows}
    child = rows[arch_key(steps["drop the conv1 block"])]
    assert child["status"] == child["verdict"] == "costlier"
    assert child["cost"] == child["arena"] == FakeTrials.arena(steps["drop the conv1 block"])
    assert child["auc_int8"] is None and child["message"] == "more arena"
    # Never expanded, never on the front, and the budget counted the trained trials only.
    assert child["arch_key"] not in {r["parent"] for r in res.rows}
    assert child["arch_key"] not in {r["arch_key"] for r in res.front}
    trained = [r for r in res.rows if r["verdict"] != "costlier"]
    assert len(trained) == res.trained == budget and len(fake.jobs) == len(res.rows)
    assert len(res.rows) > budget and res.stopped == f"trial budget spent ({budget})"
    # Each child was sent its parent's cost; the baseline none.
    for r in res.rows:
        parent = rows.get(r["parent"])
        assert fake.parent_costs[r["arch_key"]] == (parent["cost"] if parent else None)
    # The report and the model card's record show it with its figures and no AUC.
    from tinysmile.search.commands import _report_table, _trial_line
    from tinysmile.search.search import search_record

    line = _trial_line(child, {"done": 1, "total": 2, "eta": None}, "arena")
    assert line.endswith("costlier: more arena")
    _report_table(res.settings, res.rows)  # formats a row with no AUC
    rec = search_record(tmp_path / "s", json.loads(child["arch"]))
    assert rec["verdicts"]["costlier"] == 1 and rec["path"][-1]["step"] == child["step"]


def _met_twice(store):
    """X, a reduction of both A and B, is dearer than A (met first, the cheaper) but
    cheaper than B, by an arena given by hand; every other architecture is dearer than all
    of them. Returns (A, B, X, a stand-in maker, a settings maker)."""
    base = load_arch("embedded3")
    kids = dict(reductions(base))
    a, b = kids["halve conv1 (8 -> 4 filters)"], kids["halve conv2 (24 -> 12 filters)"]
    x = dict(reductions(a))["halve conv2 (24 -> 12 filters)"]
    assert arch_key(x) == arch_key(dict(reductions(b))["halve conv1 (8 -> 4 filters)"])
    arena = {arch_key(base): 100, arch_key(a): 50, arch_key(b): 90, arch_key(x): 70}

    def fake(**kw):
        return FakeTrials(
            arch_macs(base), probe=True, arena_of=lambda arch: arena.get(arch_key(arch), 999), **kw
        )

    def settings(out, **kw):
        return _settings(store, out, cost="arena", target_auc="0.5", pareto=True, trials=8, **kw)

    return a, b, x, fake, settings


def test_a_child_costlier_than_one_model_is_trained_as_the_reduction_of_a_dearer_one(
    store, tmp_path
):
    from tinysmile.search.search import search

    a, b, x, fake, settings = _met_twice(store)

    f = fake()
    res = search(settings(tmp_path / "s"), f)
    rows = {r["arch_key"]: r for r in res.rows}
    row = rows[arch_key(x)]
    # Measured as A's reduction (costlier), then trained as B's.
    assert f.jobs.count(arch_key(x)) == 2 and f.parent_costs[arch_key(x)] == 90
    assert row["status"] == "done" and row["verdict"] == "accepted" and row["attempts"] == 2
    assert row["parent"] == arch_key(b) and row["step"] == "halve conv1 (8 -> 4 filters)"
    assert row["cost"] == 70 and row["message"] is None
    assert res.trained == 4 and res.stopped == "nothing left to expand"
    base = load_arch("embedded3")
    done = {k for k, r in rows.items() if r["status"] == "done"}
    assert done == {arch_key(base), arch_key(a), arch_key(b), arch_key(x)}
    # Run again: nothing is trained or measured, and the table is the same.
    again = fake()
    assert _table(search(settings(tmp_path / "s"), again).rows) == _table(res.rows)
    assert again.jobs == []
    # Killed as X is about to be trained as B's reduction, or just after, then run again:
    # the jobs left are run in the same order, and the table is the same.
    second = [i for i, k in enumerate(f.jobs) if k == arch_key(x)][1]
    for kill in (second, second + 1):
        out = tmp_path / f"k{kill}"
        with pytest.raises(KeyboardInterrupt):
            search(settings(out), fake(stop_after=kill))
        rest = fake()
        assert _table(search(settings(out), rest).rows) == _table(res.rows)
        assert rest.jobs == f.jobs[kill:]


def test_costlier_allows_the_instruction_counts_slack_only():
    from tinysmile.search.search import INSTRUCTIONS_SLACK, costlier

    assert INSTRUCTIONS_SLACK == 0.001
    # A few instructions more is the weights' values, not the step; 0.11 % more is the step.
    assert not costlier("instructions", 1_000_004, 1_000_000)
    assert not costlier("instructions", 1_000_900, 1_000_000)
    assert costlier("instructions", 1_001_100, 1_000_000)
    # Arena and flash are the same whatever the weights: one byte more is costlier.
    assert costlier("arena", 1_001, 1_000) and costlier("flash", 1_001, 1_000)
    assert not costlier("arena", 1_000, 1_000)


def test_pareto_under_a_size_target_answers_the_most_accurate_model_within_it(store, tmp_path):
    from tinysmile.search.search import search

    base = load_arch("embedded3")
    res = search(
        _settings(store, tmp_path / "p", max_cost=700_000, trials=14, pareto=True),
        FakeTrials(arch_macs(base)),
    )
    within = [r for r in res.rows if r["verdict"] == "accepted" and r["cost"] <= 700_000]
    top = max(r["auc_int8"] for r in within)
    # The stand-in's AUC grows with MACs: the answer is the dearest model within the
    # target, not the cheapest one the non-Pareto search would stop at.
    assert res.best["auc_int8"] == top and res.best["cost"] <= 700_000
    assert min(r["cost"] for r in within) < res.best["cost"]
    assert res.best["arch_key"] in {r["arch_key"] for r in res.front}
    best = load_arch(tmp_path / "p" / "best.json")
    assert arch_key(best) == res.best["arch_key"]
    # What a model card records of the search: the steps down to the answer, every trial.
    from tinysmile.search.search import search_record

    rec = search_record(tmp_path / "p", best)
    by_key = {r["arch_key"]: r for r in res.rows}
    steps, key = [], res.best["arch_key"]
    while key is not None:
        steps.insert(0, by_key[key]["step"])
        key = by_key[key]["parent"]
    assert [p["step"] for p in rec["path"]] == steps and steps[0] == "baseline"
    assert len(steps) >= 2  # the answer is a reduction, not the baseline
    assert rec["trials"] == len(res.rows) == sum(rec["verdicts"].values())
    assert {t["seq"] for t in rec["table"] if t["front"]} == {r["seq"] for r in res.front}
    seq = {r["arch_key"]: r["seq"] for r in res.rows}
    assert [t["from"] for t in rec["table"]] == [seq.get(r["parent"]) for r in res.rows]
    with pytest.raises(TinysmileError, match="not one of the search's trials"):
        search_record(tmp_path / "p", load_arch("alexnet"))
    # Named after the search, and described by the steps that led to it.
    assert best["name"] == "embedded3-s" + res.best["arch_key"][:6]
    assert best["description"].endswith(res.best["step"] + ".")


def test_search_resumes_where_it_was_killed(store, tmp_path):
    from tinysmile.search.search import search

    base = load_arch("embedded3")
    whole = search(
        _settings(store, tmp_path / "whole", trials=12, pareto=True), FakeTrials(arch_macs(base))
    )
    killed = FakeTrials(arch_macs(base), stop_after=4)
    with pytest.raises(KeyboardInterrupt):
        search(_settings(store, tmp_path / "k", trials=12, pareto=True), killed)
    with sqlite3.connect(store / TRIALS_FILE) as db:
        status = dict(
            db.execute(
                "SELECT arch_key, status FROM trials WHERE search = ?", (str(tmp_path / "k"),)
            ).fetchall()
        )
    done = {k for k, s in status.items() if s == "done"}
    assert len(done) == 4 and "running" in status.values()
    # A card made meanwhile counts the interrupted trials as running, not as unjudged.
    from tinysmile.search.search import search_record

    with sqlite3.connect(store / TRIALS_FILE) as db:
        (arch,) = db.execute(
            "SELECT arch FROM trials WHERE search = ? AND seq = 0", (str(tmp_path / "k"),)
        ).fetchone()
    rec = search_record(tmp_path / "k", json.loads(arch))
    assert None not in rec["verdicts"] and rec["verdicts"]["running"] >= 1
    again = FakeTrials(arch_macs(base))
    res = search(_settings(store, tmp_path / "k", trials=12, pareto=True), again)
    assert not done & set(again.jobs)  # no finished trial trained again
    assert {k for k, s in status.items() if s == "running"} <= set(again.jobs)
    assert _table(res.rows) == _table(whole.rows)
    retried = [r for r in res.rows if r["attempts"] == 2]
    assert retried and all(status.get(r["arch_key"]) == "running" for r in retried)


class ReversedTrials(FakeTrials):
    """The same results, each batch finishing in the reverse order."""

    def __call__(self, jobs):
        yield from reversed(list(super().__call__(jobs)))


def test_trials_are_judged_as_they_finish_and_the_table_does_not_depend_on_it(store, tmp_path):
    from tinysmile.search.search import search

    base = load_arch("embedded3")
    seen: list[tuple[int, str]] = []
    kw = {"trials": 12, "pareto": True}
    ordered = search(_settings(store, tmp_path / "a", **kw), FakeTrials(arch_macs(base)))
    rev = search(
        _settings(store, tmp_path / "b", **kw),
        ReversedTrials(arch_macs(base)),
        on_trial=lambda row, p: seen.append((row["seq"], row["verdict"])),
    )
    assert _table(rev.rows) == _table(ordered.rows)
    # One progress line per trial, in the order the trials finished: within the first
    # batch of children, last started first.
    assert sorted(q for q, _ in seen) == [r["seq"] for r in rev.rows]
    first = [q for q, _ in seen[1:9]]  # the baseline's 8 children that cost less
    assert first == sorted(first, reverse=True) == list(range(8, 0, -1))
    assert all(v for _, v in seen)


def test_search_refuses_to_continue_with_other_settings(store, tmp_path):
    from tinysmile.search.search import search

    fake = FakeTrials(arch_macs(load_arch("embedded3")))
    search(_settings(store, tmp_path / "s", trials=1), fake)
    with pytest.raises(TinysmileError, match="other epochs"):
        search(_settings(store, tmp_path / "s", trials=1, epochs=3), fake)
    # Separable steps change the tree the search walks: not the same search either.
    with pytest.raises(TinysmileError, match="other separable"):
        search(_settings(store, tmp_path / "s", trials=1, separable=True), fake)


def test_separable_steps_only_when_asked(store, tmp_path):
    from tinysmile.search.search import search, search_record

    base = load_arch("embedded3")
    assert not any("separable" in step for step, _ in reductions(base))
    runs = {}
    for separable in (False, True):
        fake = FakeTrials(arch_macs(base))
        out = tmp_path / f"s-{separable}"
        res = search(_settings(store, out, trials=12, pareto=True, separable=separable), fake)
        runs[separable] = (res, search_record(out, base))
    steps = {sep: {r["step"] for r in res.rows} for sep, (res, _) in runs.items()}
    assert not any("separable" in step for step in steps[False])
    assert "make conv3 depthwise-separable" in steps[True]
    sep_rows = [r for r in runs[True][0].rows if "separable" in (r["step"] or "")]
    assert all(r["status"] == "done" for r in sep_rows)
    # The card's record says so only when the steps were on.
    assert runs[True][1]["separable"] is True and "separable" not in runs[False][1]


def test_search_logs_each_trial_to_mlflow_once(store, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    # A folder store keeps the test free of a server or SQLAlchemy; MLflow 3 wants it
    # asked for explicitly.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from tinysmile.search.search import search

    uri = (tmp_path / "mlruns").as_uri()
    base = load_arch("embedded3")
    res = search(
        _settings(store, tmp_path / "s", trials=4, mlflow=uri, pareto=True),
        FakeTrials(arch_macs(base)),
    )
    search(
        _settings(store, tmp_path / "s", trials=4, mlflow=uri, pareto=True),
        FakeTrials(arch_macs(base)),
    )
    mlflow.set_tracking_uri(uri)
    exp = mlflow.get_experiment_by_name(f"tinysmile search {tmp_path / 's'}")
    runs = mlflow.search_runs([exp.experiment_id], output_format="list")
    assert len(runs) == len(res.rows) == 4  # the second (resumed) search logged nothing new
    by_key = {r.data.tags["arch_key"]: r for r in runs}
    for row in res.rows:
        run = by_key[row["arch_key"]]
        assert run.data.tags["verdict"] == row["verdict"]
        assert run.data.metrics["auc_int8"] == row["auc_int8"]
        assert run.data.metrics["macs"] == row["macs"]
    # A trial measured costlier, then trained as another model's reduction: both logged.
    _, _, x, fake, settings = _met_twice(store)
    res = search(settings(tmp_path / "m", mlflow=uri), fake())
    exp = mlflow.get_experiment_by_name(f"tinysmile search {tmp_path / 'm'}")
    runs = mlflow.search_runs([exp.experiment_id], output_format="list")
    assert len(runs) == len(res.rows) + 1
    of_x = [r for r in runs if r.data.tags["arch_key"] == arch_key(x)]
    assert sorted(r.data.tags["verdict"] for r in of_x) == ["accepted", "costlier"]
    assert [r.data.metrics["arena"] for r in of_x] == [70, 70]


def test_baseline_from_a_training_run(tmp_path):
    from tinysmile.search.search import load_baseline

    emb = load_arch("embedded3")
    new, old = tmp_path / "new", tmp_path / "old"
    new.mkdir()
    old.mkdir()
    small = dict(reductions(emb))["input 64x64 -> 48x48"]
    (new / "arch.json").write_text(json.dumps(small))  # what train writes now
    (old / "run.json").write_text(json.dumps({"arch": "embedded3"}))  # runs from before
    assert arch_key(load_baseline(str(new))) == arch_key(small)
    assert arch_key(load_baseline(str(old))) == arch_key(emb)
    with pytest.raises(TinysmileError, match="not a training run or a bundle"):
        load_baseline(str(tmp_path))


def test_baseline_from_a_bundle(tmp_path):
    """A bundle's architecture is the one its provenance records (bench_accuracy's --arch
    takes bundles through this too)."""
    import shutil

    from tinysmile.search.search import load_baseline

    default = Path(__file__).resolve().parents[1] / "tinysmile" / "models" / "smile_default"
    recorded = json.loads((default / "bundle.json").read_text())["provenance"]["arch_spec"]
    arch = load_baseline(str(default))
    assert arch_key(arch) == arch_key(load_arch(recorded))
    assert (arch["input"]["height"], arch["input"]["width"]) == (48, 48)
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(default / "model.tflite", bare / "model.tflite")
    (bare / "bundle.json").write_text(json.dumps({"name": "bare"}))
    with pytest.raises(TinysmileError, match="does not record its architecture"):
        load_baseline(str(bare))


def test_search_cli_errors_are_one_line(tmp_path):
    for args, message in [
        (["--out", str(tmp_path / "o")], "needs --data STORE and --out DIR"),
        (["--data", str(tmp_path), "--out", str(tmp_path / "o")], "not a dataset store"),
        (["--report", str(tmp_path)], "not a search folder"),
        (
            ["--baseline", "resnet", "--data", str(tmp_path), "--out", str(tmp_path / "o")],
            "unknown architecture 'resnet'",
        ),
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", "tinysmile", "search", *args],
            check=False,
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert proc.returncode == 2, args
        assert proc.stderr.startswith("error: ") and message in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


def test_a_resumed_searchs_wall_time_leaves_out_the_pause():
    from tinysmile.search.search import running_seconds

    # Two workers overlap (0-10, 4-12, 11-15: running 0-15), then the search is stopped and
    # continued an hour later (3600-3605, nested 3601-3603): 15 + 5 seconds, not 3605.
    spans = [(4.0, 12.0), (0.0, 10.0), (11.0, 15.0), (3600.0, 3605.0), (3601.0, 3603.0)]
    assert running_seconds(spans) == 20.0
    assert running_seconds([(1.0, 2.0), (2.0, 3.0)]) == 2.0
    assert running_seconds([]) == 0.0


def test_target_auc_parsing():
    from tinysmile.search.search import parse_target

    assert parse_target("0.8x") == (0.8, True)
    assert parse_target("0.95") == (0.95, False)
    for bad in ("x", "1.5", "-0.2x", "high"):
        with pytest.raises(TinysmileError, match="--target-auc"):
            parse_target(bad)


# -- end to end: a tiny search on SMILEsmileD ---------------------------------------------

needs_real = pytest.mark.skipif(
    not (SMILESMILED / "SMILEs").is_dir(), reason=f"SMILEsmileD not found at {SMILESMILED}"
)
# 300 images (about 240 train, 30 val), one epoch, four trials: the baseline, over the
# 256 KiB board's RAM, then three reductions trained two at a time. About a minute.
TINY_ARGS = [
    "--baseline", str(TINY), "--board", "arduino-nano-33-ble-sense", "--cost", "macs",
    "--trials", "4", "--epochs", "1", "--batch-size", "32", "--calibration", "50", "--pareto",
]  # fmt: skip


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tinysmile", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        **kw,
    )


def _rows(store: Path, out: Path) -> list[dict]:
    with sqlite3.connect(store / TRIALS_FILE) as db:
        db.row_factory = sqlite3.Row
        cur = db.execute("SELECT * FROM trials WHERE search = ? ORDER BY seq", (str(out),))
        return [dict(r) for r in cur.fetchall()]


@pytest.fixture(scope="module")
def real_store(tmp_path_factory):
    if not (SMILESMILED / "SMILEs").is_dir():
        pytest.skip(f"SMILEsmileD not found at {SMILESMILED}")
    from tinysmile.data.importers import import_dataset
    from tinysmile.data.store import Store

    root = tmp_path_factory.mktemp("search") / "store"
    with Store(root) as store:
        import_dataset("smilesmiled", SMILESMILED, store, limit=300)
    return root


@pytest.fixture(scope="module")
def local_search(real_store):
    pytest.importorskip("tensorflow")
    out = real_store.parent / "local"
    t = time.perf_counter()
    proc = _cli(
        "search", "--data", str(real_store), *TINY_ARGS, "--workers", "2", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(f"tiny local search: {time.perf_counter() - t:.0f} s")
    return out, proc, _rows(real_store, out)


@pytest.mark.slow
@needs_real
def test_tiny_search_records_every_trial(local_search, real_store):
    out, proc, rows = local_search
    assert len(rows) == 4
    assert rows[0]["step"] == "baseline" and rows[0]["parent"] is None
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 4 and "4/4" in lines[-1] and "ETA" in lines[0]
    base = rows[0]
    # 64x64x64 int8 of conv1 output alone is 256 KiB: more than the board has.
    assert base["verdict"] == "over_budget" and base["fits"] == 0
    assert "bytes of RAM" in base["message"]
    beta = 0.8 * base["auc_int8"]
    for r in rows:
        assert r["status"] == "done" and r["attempts"] == 1
        assert r["beta"] == pytest.approx(beta)
        assert r["seed"] == 0 and r["epochs"] == 1 and len(r["data_hash"]) == 64
        assert 0 <= r["auc_float"] <= 1 and 0 <= r["auc_int8"] <= 1
        assert r["cost"] == r["macs"] == arch_macs(json.loads(r["arch"]))
        assert r["arena"] > 0 and r["flash"] > 0 and r["train_seconds"] > 0
        expect = "pruned" if r["auc_int8"] < beta else ("accepted" if r["fits"] else "over_budget")
        assert r["verdict"] == expect
        if r["parent"]:
            assert r["parent"] == base["arch_key"]
        assert (Path(r["run_dir"]) / "bundle" / "model.tflite").is_file()
    # The baseline's reductions, cheapest by MACs first, three of them (the trial budget).
    steps = [r["step"] for r in rows[1:]]
    assert steps == [
        "drop the conv1 block",
        "conv1 stride 1 -> 2",
        "halve conv1 (64 -> 32 filters)",
    ]
    rep = _cli("search", "--report", str(out))
    assert rep.returncode == 0, rep.stderr
    assert "drop the conv1 block" in rep.stdout and (out / "pareto.png").stat().st_size > 1000


@pytest.mark.slow
@needs_real
def test_tiny_search_resumes_after_kill_mid_trial(local_search, real_store):
    out = real_store.parent / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinysmile", "search", "--data", str(real_store), *TINY_ARGS]
        + ["--workers", "2", "--out", str(out)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            rows = _rows(real_store, out) if (real_store / TRIALS_FILE).is_file() else []
            if any(r["status"] == "done" for r in rows) and any(
                r["status"] == "running" for r in rows
            ):
                break
            assert proc.poll() is None, "the search ended before it could be killed"
            time.sleep(0.5)
        time.sleep(3)  # inside the children's trials (TensorFlow is loading or training)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the coordinator and its trial processes
        proc.wait()
    before = {r["arch_key"]: r for r in _rows(real_store, out)}
    finished = {k for k, r in before.items() if r["status"] == "done"}
    running = {k for k, r in before.items() if r["status"] == "running"}
    assert finished and running
    again = _cli(
        "search", "--data", str(real_store), *TINY_ARGS, "--workers", "2", "--out", str(out)
    )
    assert again.returncode == 0, again.stderr[-3000:]
    after = {r["arch_key"]: r for r in _rows(real_store, out)}
    for k in finished:  # not trained again
        assert after[k]["attempts"] == 1 and after[k]["finished"] == before[k]["finished"]
    for k in running:  # retried
        assert after[k]["attempts"] == 2 and after[k]["status"] == "done"
    _, _, local_rows = local_search
    assert _table(sorted(after.values(), key=lambda r: r["seq"])) == _table(local_rows)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@needs_real
def test_tiny_search_on_ray_gives_the_same_table(local_search, real_store, tmp_path_factory):
    pytest.importorskip("ray")
    ray_bin = Path(sys.executable).parent / "ray"
    port = _free_port()
    # A short folder: Ray's unix sockets live under it, and their paths are length-limited.
    tmp = Path(f"/tmp/tsr{os.getpid()}")
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--num-cpus", "2", "--port", str(port)]
        + ["--include-dashboard=false", "--disable-usage-stats", "--temp-dir", str(tmp), "--block"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out = real_store.parent / "ray"
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the head is up once its GCS port answers
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        proc = _cli(
            "search", "--data", str(real_store), *TINY_ARGS, "--ray", address, "--out", str(out)
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    finally:
        head.send_signal(signal.SIGTERM)  # --block: the head stops the processes it started
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    _, _, local_rows = local_search
    assert _table(_rows(real_store, out)) == _table(local_rows)


@pytest.mark.slow
@needs_real
def test_instructions_cost_is_the_emulated_boards_profile(real_store):
    # Two trials on the emulated board (QEMU -icount): each trial's cost is the instruction
    # count of one inference, which `tinysmile profile` on its bundle gives again, exactly.
    pytest.importorskip("tensorflow")
    from tinysmile.device.commands import run_profile
    from tinysmile.search.search import INSTRUCTIONS_SLACK

    out = real_store.parent / "instructions"
    args = ["--baseline", str(TINY), "--cost", "instructions", "--trials", "2", "--epochs", "1"]
    proc = _cli("search", "--data", str(real_store), *args, "--pareto", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _rows(real_store, out)
    assert len(rows) == 2
    for r in rows:
        assert r["verdict"] == "accepted" and r["cost"] == r["instructions"]
        bundle = Path(r["run_dir"]) / "bundle"
        assert run_profile(str(bundle), "qemu-cortex-m4")["total"] == r["instructions"]
    # Dropping the 64-filter full-resolution conv leaves far fewer instructions.
    assert rows[1]["step"] == "drop the conv1 block"
    assert rows[1]["instructions"] < rows[0]["instructions"]
    # Told that the model it reduces costs less (here the cheaper child's count), a trial
    # measures its model untrained and stops before training: the figures are the trained
    # model's, the instruction count within the slack for the weights' values.
    probe_dir = out / "probe"
    job = {
        "arch_key": rows[0]["arch_key"], "arch": json.loads(rows[0]["arch"]),
        "store": str(real_store), "run_dir": str(probe_dir), "seed": 0, "epochs": 1,
        "batch_size": 64, "learning_rate": 3e-3, "augment": 1.0, "calibration": 200,
        "board": "qemu-cortex-m4", "profile_board": "qemu-cortex-m4", "cost": "instructions",
        "threads": 1, "parent_cost": rows[1]["instructions"], "quiet": False,
    }  # fmt: skip
    code = (
        "import json, sys; from tinysmile.search.search import run_trial; "
        "print('RESULT', json.dumps(run_trial(json.loads(sys.argv[1]))))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, json.dumps(job)],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (line,) = [x for x in run.stdout.splitlines() if x.startswith("RESULT ")]
    res = json.loads(line[len("RESULT ") :])
    assert res["status"] == "costlier", res
    for k in ("arena", "flash", "macs"):
        assert res[k] == rows[0][k], k
    assert abs(res["instructions"] - rows[0]["instructions"]) <= (
        INSTRUCTIONS_SLACK * rows[0]["instructions"]
    )
    assert f"{res['instructions']:,} instructions untrained" in res["message"]
    assert f"the {rows[1]['instructions']:,} of the model it reduces" in res["message"]
    assert not (probe_dir / "run").exists() and not (probe_dir / "untrained").exists()
    # A bundle made again from a trial's run, with the search's calibration, is the same
    # int8 model; its card records the search and the figures the trial measured.
    row = rows[1]
    card_dir = out / "card"
    q = _cli(
        "quantize", str(Path(row["run_dir"]) / "run"), "--out", str(card_dir),
        "--calibration", "200", "--search", str(out), "--profile", "qemu-cortex-m4",
    )  # fmt: skip
    assert q.returncode == 0, q.stderr[-3000:]
    meta = json.loads((card_dir / "bundle.json").read_text())
    trial = json.loads((Path(row["run_dir"]) / "bundle" / "bundle.json").read_text())
    assert meta["model_sha256"] == trial["model_sha256"]
    assert meta["device"] == {
        "arena_bytes": row["arena"],
        "weights_bytes": row["flash"],
        "board": "qemu-cortex-m4",
        "instructions": row["instructions"],
    }
    rec = meta["search"]
    assert [p["step"] for p in rec["path"]] == ["baseline", "drop the conv1 block"]
    assert [t["seq"] for t in rec["table"]] == [0, 1] and rec["trials"] == 2
    assert rec["verdicts"] == {"accepted": 2} and rec["cost"] == "instructions"
    assert rec["wall_seconds"] >= max(r["seconds"] for r in rows)
    card = (card_dir / "MODEL_CARD.md").read_text()
    assert "## Search" in card and f"{row['instructions']:,} instructions" in card
    # The steps and the trials have a column for the cost the search reduced.
    assert f"| drop the conv1 block | {row['macs']:,} | {row['instructions']:,} |" in card
    assert "| step | MACs | instructions | val AUC int8 (search) |" in card
    assert f"| {row['arena']:,} | {row['instructions']:,} | " in card
