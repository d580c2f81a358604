"""Rater votes: resolution policies, agreement figures, label-error estimate, import."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from tinysmile.cli import main
from tinysmile.data.importers import import_dataset
from tinysmile.data.store import Store
from tinysmile.data.votes import pair_agreement, rater_error, resolve, resolved_error
from tinysmile.errors import TinysmileError


def test_pair_agreement_ignores_unsure():
    assert pair_agreement(["yes", "yes", "no"]) == (1, 3)
    assert pair_agreement(["yes", "yes", "yes", "unsure"]) == (3, 3)
    assert pair_agreement(["yes", "no", "unsure"]) == (0, 1)
    assert pair_agreement(["yes"]) == (0, 0)


def test_majority_policy():
    r = resolve(["yes", "yes", "no"], "smile")
    assert (r.label, r.decisive, r.agreement) == (1, 3, 1 / 3)
    assert resolve(["no", "unsure", "unsure"], "smile").label == 0
    tie = resolve(["yes", "no", "unsure"], "smile")
    assert tie.label is None and tie.reason == "tie between no and yes"
    few = resolve(["yes", "unsure"], "smile", min_votes=2)
    assert few.label is None and few.reason == "1 decisive vote(s), need 2"
    assert resolve(["unsure"], "smile").label is None
    att = resolve(["neutral", "positive", "neutral", "negative"], "attitude")
    assert att.label == 1


def test_two_raters_policy_drops_disagreements():
    assert resolve(["yes", "yes", "no"], "smile", "two").label == 1  # only the first two count
    assert resolve(["yes", "no", "no"], "smile", "two").reason == "raters disagree (yes vs no)"
    assert resolve(["unsure", "no"], "smile", "two").reason == "a rater was unsure"
    assert resolve(["no"], "smile", "two").reason == "fewer than two votes"
    with pytest.raises(TinysmileError, match="policy"):
        resolve(["yes"], "smile", "unanimous")


def test_error_model():
    # e = 0.1 with two classes: raters agree 0.9^2 + 0.1^2 = 0.82 of the time
    assert math.isclose(rater_error(0.82, 2), 0.1, rel_tol=1e-12)
    # three classes, e = 0.2: 0.8^2 + 0.2^2 / 2 = 0.66
    assert math.isclose(rater_error(0.66, 3), 0.2, rel_tol=1e-12)
    assert rater_error(1.0, 2) == 0.0
    assert rater_error(0.3, 2) == 0.5  # below chance: capped at a coin flip
    # majority of 3 with e = 0.1: 3 * 0.01 * 0.9 + 0.001 = 0.028
    assert math.isclose(resolved_error(0.1, 2, "majority", 3), 0.028, rel_tol=1e-12)
    # majority of 2 (ties dropped) is only wrong when both are: 0.01 / (1 - 0.18)
    assert math.isclose(resolved_error(0.1, 2, "majority", 2), 0.01 / 0.82, rel_tol=1e-12)
    assert math.isclose(resolved_error(0.1, 2, "two", 2), 0.01 / 0.82, rel_tol=1e-12)
    assert resolved_error(0.1, 2, "majority", 1) == 0.1


def make_votes_tree(tmp_path: Path) -> Path:
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(6):
        image = np.random.default_rng(i).integers(0, 256, (20, 20), dtype=np.uint8)
        cv2.imwrite(str(images / f"p{i}.png"), image)
    (images / "p5.png").write_bytes(b"broken")
    rows = [
        # image, rater, answer
        ("imgs/p0.png", "ann", "yes"),
        ("imgs/p0.png", "bob", "yes"),
        ("imgs/p0.png", "cat", "yes"),  # unanimous
        ("imgs/p1.png", "ann", "yes"),
        ("imgs/p1.png", "bob", "no"),
        ("imgs/p1.png", "cat", "no"),  # 2:1 for no
        ("imgs/p2.png", "ann", "no"),
        ("imgs/p2.png", "bob", "yes"),
        ("imgs/p2.png", "cat", "unsure"),  # tie: dropped under majority
        ("imgs/p3.png", "ann", "Y"),
        ("imgs/p3.png", "bob", "1"),  # unanimous with two decisive votes
        ("imgs/p3.png", "bob", "no"),  # bob again: ignored, listed
        ("imgs/p4.png", "ann", "smirk"),  # not an answer: listed
        ("imgs/p4.png", "bob", "no"),
        ("imgs/p5.png", "ann", "yes"),  # corrupt image
        ("imgs/p5.png", "bob", "yes"),
        ("imgs/p9.png", "ann", "no"),  # missing image
        ("imgs/p9.png", "bob", "no"),
    ]
    path = tmp_path / "votes.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Image", "Rater", "Answer"])
        w.writerows(rows)
    return path


def test_votes_import_majority(tmp_path):
    path = make_votes_tree(tmp_path)
    table = tmp_path / "agreement.csv"
    with Store(tmp_path / "store") as store:
        r = import_dataset("votes", path, store, agreement_csv=table)
        # p0, p1, p3, p4 stored; p2 dropped (tie); p5 corrupt; p9 missing
        assert (r.seen, r.added) == (5, 4)
        assert r.dropped == [("imgs/p2.png", "tie between no and yes")]
        why = sorted(w for _, w in r.skipped)
        assert why == [
            "answer 'smirk' is not a smile answer",
            "listed in the votes CSV but missing",
            "not a readable image",
            "rater bob voted twice for imgs/p3.png; first vote kept",
        ]
        a = r.agreement
        # pairs of decisive votes: p0 3/3, p1 1/3, p2 0/1, p3 1/1, p5 1/1, p9 1/1
        assert (a["images"], a["pairs"], a["agreeing_pairs"]) == (7, 10, 7)
        assert a["pairwise_agreement"] == 0.7
        assert math.isclose(a["rater_error"], rater_error(0.7, 2))
        e = a["rater_error"]
        # p0 p1 p3 p4 p5: the estimate is about the votes, so p5's corrupt file still counts
        kept = [resolved_error(e, 2, "majority", n) for n in (3, 3, 2, 1, 2)]
        assert math.isclose(a["label_error"], sum(kept) / 5)
        got = {Path(s.original).name: (s.label, s.votes, s.agreement) for s in store.samples()}
        assert got["p0.png"] == (1, ("ann:yes", "bob:yes", "cat:yes"), 1.0)
        assert got["p1.png"][0] == 0 and math.isclose(got["p1.png"][2], 1 / 3)
        assert got["p3.png"] == (1, ("ann:yes", "bob:yes"), 1.0)
        assert got["p4.png"] == (0, ("bob:no",), None)
        stats = store.stats()["tasks"]["smile"]["agreement"]
        assert stats["images_with_votes"] == 3
    with table.open() as fh:
        rows = {row["image"]: row for row in csv.DictReader(fh)}
    assert rows["imgs/p2.png"]["status"] == "dropped: tie between no and yes"
    assert (
        rows["imgs/p1.png"]["label"] == "no_smile" and rows["imgs/p1.png"]["agreement"] == "0.3333"
    )
    assert rows["imgs/p9.png"]["status"] == "missing"


def test_votes_two_raters_wide_csv(tmp_path, capsys):
    images = tmp_path / "faces"
    images.mkdir()
    for i in range(4):
        cv2.imwrite(str(images / f"f{i}.png"), np.full((8, 8), 10 * i, dtype=np.uint8))
    path = tmp_path / "wide.csv"
    path.write_text(
        "file,r1,r2,r3\n"
        "f0.png,yes,yes,no\n"  # first two agree: kept as smile
        "f1.png,no,yes,no\n"  # first two disagree: dropped
        "f2.png,unsure,no,no\n"  # unsure: dropped
        "f3.png,no,,no\n"  # r2 gave no vote: r1 and r3 are the two
    )
    store_dir = tmp_path / "store"
    argv = ["data", "import", "votes", str(path), "--store", str(store_dir), "--images"]
    assert main([*argv, str(images), "--resolve", "two", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["added"], len(report["dropped"])) == (2, 2)
    assert report["agreement"]["policy"] == "two"
    with Store(store_dir) as store:
        got = {Path(s.original).name: s.label for s in store.samples()}
    assert got == {"f0.png": 1, "f3.png": 0}
    assert main([*argv, str(images), "--resolve", "two"]) == 0
    out = capsys.readouterr().out
    assert "0 added, 2 already present" in out and "pairwise agreement" in out
