"""The suspects queue ranks deliberately flipped labels first (cleanlab on out-of-fold
probabilities of the embedded net). Tiny training: 300 synthetic images whose class a
net learns in an epoch, 3 folds x 2 epochs, so the test is about the ranking machinery
and not about how hard smiles are."""

from __future__ import annotations

import json

import pytest
from label_helpers import Server, make_store

from tinysmile.cli import main
from tinysmile.data.store import Store

pytestmark = pytest.mark.slow

FLIP_RATE = 0.1


def test_suspects_rank_the_flipped_labels_first(tmp_path, capsys):
    truth = make_store(tmp_path / "s", labelled=300, flip_rate=FLIP_RATE, seed=5)
    flipped = {i for i, t in truth.items() if t["true"] != t["given"]}
    assert len(flipped) == 30
    argv = ["label", "suspects", "--store", str(tmp_path / "s"), "--folds", "3", "--epochs", "2"]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    ranked = [r["image"] for r in report["ranked"]]
    with Store(tmp_path / "s", create=False) as s:
        queue = [
            r[0]
            for r in s.query("SELECT sample FROM queue_items WHERE queue='suspects' ORDER BY rank")
        ]
    assert queue == ranked and len(ranked) == report["suspects"] == 200  # --top
    k = len(flipped)
    top = ranked[:k]
    precision = sum(i in flipped for i in top) / k
    print(
        f"suspects: precision@{k} = {precision:.2f} (random: {FLIP_RATE:.2f}), "
        f"{report['flagged']} flagged by cleanlab, out-of-fold AUC {report['oof_auc']:.3f}, "
        f"{report['seconds']} s"
    )
    # Random ranking would give about FLIP_RATE; the model's doubts must do far better.
    assert precision >= 0.7

    # The queue is served: the first suspect is the first image a rater sees.
    with Server(tmp_path / "s", "--queue", "suspects") as srv:
        assert srv.get("api/next?rater=ann")[1]["image"] == ranked[0]
