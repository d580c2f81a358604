"""Votes in the store: idempotent submission, undo, resolution policies, the labels
training sees, the audit estimate and its interval, agreement (kappa)."""

from __future__ import annotations

import subprocess
import sys
import uuid

import numpy as np
import pytest
from label_helpers import make_store

from tinysmile.data.store import Store
from tinysmile.data.votes import resolve, votes_needed
from tinysmile.errors import TinysmileError
from tinysmile.label.ratings import (
    LabelConfig,
    RatingError,
    Ratings,
    ensure_audit,
    get_config,
    rate_per_hour,
    set_config,
)
from tinysmile.label.stats import fleiss_kappa, label_stats, wilson_interval


def _req() -> str:
    return uuid.uuid4().hex


def test_votes_import_has_no_cycle_with_importers():
    code = (
        "import sys, tinysmile.data.votes; "
        "assert 'tinysmile.data.importers' not in sys.modules, 'votes imports importers'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_two_then_third_policy():
    assert votes_needed(["yes", "yes"], "two-then-third", 2) == 2
    assert votes_needed(["yes", "no"], "two-then-third", 2) == 3
    assert votes_needed(["yes", "unsure"], "two-then-third", 2) == 3
    assert votes_needed(["yes"], "majority", 3) == 3
    assert resolve(["yes", "no", "no"], "smile", "two-then-third").label == 0
    assert resolve(["yes", "no", "yes"], "smile", "two-then-third").label == 1
    assert resolve(["yes", "no", "unsure"], "smile", "two-then-third").label is None
    assert resolve(["unsure", "no", "no"], "smile", "two-then-third").label == 0
    assert resolve(["yes", "no"], "smile", "two-then-third").label is None


@pytest.fixture
def store(tmp_path):
    truth = make_store(tmp_path / "s", unlabelled=6, labelled=4)
    s = Store(tmp_path / "s", create=False)
    yield s, truth
    s.close()


def _unlabelled(truth):
    return sorted(i for i, t in truth.items() if t["given"] is None)


def test_a_retried_vote_counts_once_and_a_reused_id_is_refused(store):
    s, truth = store
    r = Ratings(s, "unlabelled", LabelConfig("majority", 2))
    img = _unlabelled(truth)[0]
    req = _req()
    first = r.vote(req, "ann", img, "yes")
    again = r.vote(req, "ann", img, "yes")
    assert (first.repeated, again.repeated, again.vote) == (False, True, first.vote)
    assert s.query("SELECT COUNT(*) FROM votes")[0][0] == 1
    with pytest.raises(RatingError) as e:
        r.vote(req, "ann", img, "no")
    assert e.value.status == 409
    with pytest.raises(RatingError) as e:
        r.vote(_req(), "ann", img, "no")  # a second answer on the same image
    assert e.value.status == 409


def test_undo_is_idempotent_and_a_retry_after_undo_stays_undone(store):
    s, truth = store
    r = Ratings(s, "unlabelled", LabelConfig("majority", 1))
    img = _unlabelled(truth)[0]
    req = _req()
    r.vote(req, "ann", img, "yes")
    assert s.query("SELECT rating, rated_label FROM samples WHERE id=?", (img,)) == [
        ("resolved", 1)
    ]
    assert r.undo(req, "ann") == {"image": img, "repeated": False}
    assert r.undo(req, "ann") == {"image": img, "repeated": True}
    assert r.vote(req, "ann", img, "yes").repeated  # the late retry of the undone vote
    assert s.query("SELECT rating, rated_votes FROM samples WHERE id=?", (img,)) == [(None, 0)]
    with pytest.raises(RatingError) as e:
        r.undo(req, "bob")  # not bob's vote
    assert e.value.status == 404
    r.vote(_req(), "ann", img, "no")  # after the undo, ann may answer again
    assert s.query("SELECT rating, rated_label FROM samples WHERE id=?", (img,)) == [
        ("resolved", 0)
    ]


@pytest.mark.parametrize(
    "answer, status",
    [("maybe", 400), (None, 400), (3, 400)],
)
def test_bad_answers_are_refused(store, answer, status):
    s, truth = store
    r = Ratings(s, "unlabelled")
    with pytest.raises(RatingError) as e:
        r.vote(_req(), "ann", _unlabelled(truth)[0], answer)
    assert e.value.status == status


def test_bad_fields_are_refused(store):
    s, truth = store
    r = Ratings(s, "unlabelled")
    img = _unlabelled(truth)[0]
    labelled = next(i for i, t in truth.items() if t["given"] is not None)
    cases = [
        (("short", "ann", img, "yes"), 400),
        ((_req(), "", img, "yes"), 400),
        ((_req(), "a" * 41, img, "yes"), 400),
        ((_req(), "ann", "../../etc/passwd", "yes"), 404),
        ((_req(), "ann", "0" * 64, "yes"), 404),
        ((_req(), "ann", labelled, "yes"), 409),  # labelled: not in the unlabelled queue
    ]
    for args, status in cases:
        with pytest.raises(RatingError) as e:
            r.vote(*args)
        assert e.value.status == status, args
    assert s.query("SELECT COUNT(*) FROM votes")[0][0] == 0


def test_next_image_never_repeats_for_a_rater_and_leaves_after_k_votes(store):
    s, truth = store
    r = Ratings(s, "unlabelled", LabelConfig("majority", 2))
    seen = []
    while (img := r.next_for("ann")["image"]) is not None:
        assert img not in seen
        seen.append(img)
        r.vote(_req(), "ann", img, "skip" if len(seen) == 1 else "yes")
    assert sorted(seen) == _unlabelled(truth)
    # bob gets the images ann started first, then none: each then has two votes
    # (ann's skip is not a vote, so that image waits for another rater).
    bob = []
    while (img := r.next_for("bob")["image"]) is not None:
        bob.append(img)
        r.vote(_req(), "bob", img, "yes")
    assert sorted(bob) == _unlabelled(truth)
    assert r.next_for("cy")["image"] == seen[0]  # the skipped one still needs a vote
    state = r.next_for("ann")
    assert (state["rated"], state["left"]) == (5, 0)


def test_policies_and_the_labels_training_sees(store):
    s, truth = store
    imgs = _unlabelled(truth)
    r = Ratings(s, "unlabelled", LabelConfig("two-then-third", 2))
    set_config(s, r.config)
    answers = {
        imgs[0]: [("ann", "yes"), ("bob", "yes")],  # agree: resolved smile
        imgs[1]: [("ann", "yes"), ("bob", "no")],  # disagree: pending for a third
        imgs[2]: [("ann", "yes"), ("bob", "no"), ("cy", "no")],  # third decides: no smile
        imgs[3]: [("ann", "unsure"), ("bob", "no"), ("cy", "unsure")],  # dropped
    }
    for img, votes in answers.items():
        for rater, a in votes:
            r.vote(_req(), rater, img, a)
    assert r.next_for("cy")["image"] == imgs[1]
    rows = {
        i: (rating, label)
        for i, rating, label in s.query("SELECT id, rating, rated_label FROM samples")
    }
    assert [rows[i] for i in imgs[:4]] == [
        ("resolved", 1),
        ("pending", None),
        ("resolved", 0),
        ("dropped", None),
    ]
    labels = {x.id: x.label for x in s.samples()}
    labelled = {i: t["given"] for i, t in truth.items() if t["given"] is not None}
    assert labels == {**labelled, imgs[0]: 1, imgs[2]: 0}

    # Every vote is kept: another policy re-resolves from them.
    assert set_config(s, LabelConfig("majority", 2))
    assert get_config(s) == LabelConfig("majority", 2)
    rows = {i: (r_, lab) for i, r_, lab in s.query("SELECT id, rating, rated_label FROM samples")}
    assert rows[imgs[1]] == ("dropped", None)  # a 1-1 tie
    assert rows[imgs[2]] == ("resolved", 0)  # 2-1
    assert rows[imgs[3]] == ("resolved", 0)  # one decisive vote, no tie


def test_rate_per_hour_ignores_breaks():
    assert rate_per_hour([]) is None
    assert rate_per_hour([0.0, 2.0, 4.0, 1000.0, 1002.0]) == 1800.0
    assert rate_per_hour([0.0, 1000.0]) is None


def test_fleiss_kappa_by_hand():
    # 4 images, 2 raters each: 3 agree, 1 disagrees. Answers: yes 5, no 3 of 8.
    # observed 3/4; chance (5/8)^2 + (3/8)^2 = 34/64; kappa = (48/64-34/64)/(30/64) = 14/30
    images = [{"yes": 2}, {"yes": 2}, {"no": 2}, {"yes": 1, "no": 1}]
    assert fleiss_kappa(images) == pytest.approx(14 / 30, abs=1e-12)
    assert fleiss_kappa([{"yes": 2}, {"no": 2}]) == 1.0
    assert fleiss_kappa([{"yes": 1}]) is None
    # 3 raters on one image: pairs agreeing 1 of 3
    assert fleiss_kappa([{"yes": 2, "no": 1}, {"no": 2}]) == pytest.approx(
        ((1 / 3 + 1) / 2 - ((2 / 5) ** 2 + (3 / 5) ** 2)) / (1 - ((2 / 5) ** 2 + (3 / 5) ** 2))
    )


def test_wilson_interval_matches_scipy_and_covers():
    stats = pytest.importorskip("scipy.stats")  # scipy comes with the label extra (cleanlab)
    for k, n in [(0, 10), (3, 40), (17, 120), (40, 40)]:
        ref = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        lo, hi = wilson_interval(k, n)
        assert lo == pytest.approx(ref.low, abs=1e-9) and hi == pytest.approx(ref.high, abs=1e-9)
    # Coverage over many simulated audits of 120 images at a 15 % error rate: the
    # 95 % interval should hold the true rate about 95 % of the time.
    rng = np.random.default_rng(0)
    hits = 0
    for k in rng.binomial(120, 0.15, size=4000):
        lo, hi = wilson_interval(int(k), 120)
        hits += lo <= 0.15 <= hi
    assert 0.93 <= hits / 4000 <= 0.97


def test_audit_interval_covers_the_true_flip_rate(tmp_path):
    """Labels flipped at a known rate, raters who answer the true label: the audit's
    estimate lands near the rate and its 95 % interval covers it."""
    truth = make_store(tmp_path / "s", labelled=400, flip_rate=0.15, seed=3)
    with Store(tmp_path / "s", create=False) as s:
        assert ensure_audit(s, 150, seed=7) == 150
        r = Ratings(s, "audit", LabelConfig("two", 2))
        set_config(s, r.config)
        for rater in ("ann", "bob"):
            while (img := r.next_for(rater)["image"]) is not None:
                r.vote(_req(), rater, img, "yes" if truth[img]["true"] else "no")
        audit = label_stats(s)["audit"]
        drawn = [x[0] for x in s.query("SELECT sample FROM queue_items WHERE queue='audit'")]
    wrong = sum(truth[i]["true"] != truth[i]["given"] for i in drawn)
    assert (audit["resolved"], audit["wrong_labels"]) == (150, wrong)
    lo, hi = audit["interval95"]
    assert lo <= 0.15 <= hi
    assert hi - lo < 0.13  # informative, not a vacuous [0, 1]
    with Store(tmp_path / "s", create=False) as s, pytest.raises(TinysmileError, match="seed"):
        ensure_audit(s, 150, seed=8)


def test_unlabelled_import_waits_for_raters(tmp_path, capsys):
    from label_helpers import synthetic_image

    from tinysmile.cli import main

    rng = np.random.default_rng(1)
    (tmp_path / "cam" / "day1").mkdir(parents=True)
    images = [synthetic_image(rng, i % 2) for i in range(4)]
    for i, data in enumerate(images):
        (tmp_path / "cam" / "day1" / f"{i}.png").write_bytes(data)
    (tmp_path / "cam" / "notes.txt").write_text("not an image")
    store = str(tmp_path / "s")
    assert main(["data", "import", "unlabelled", str(tmp_path / "cam"), "--store", store]) == 0
    assert "4 added" in capsys.readouterr().out
    # The same picture arriving again with a label is a duplicate, not a label conflict.
    (tmp_path / "lab" / "smile").mkdir(parents=True)
    (tmp_path / "lab" / "smile" / "a.png").write_bytes(images[0])
    assert main(["data", "import", "folder", str(tmp_path / "lab"), "--store", store]) == 0
    assert "1 duplicates (0 with a different label)" in capsys.readouterr().out
    with Store(store, create=False) as s:
        assert s.samples() == []
        assert s.stats()["tasks"]["smile"]["without_label"] == 4
        skipped = s.query("SELECT reason FROM skipped")
    assert skipped == [("not an image file (unknown extension)",)]
    assert main(["data", "stats", "--store", store]) == 0
    assert "4 without a label yet" in capsys.readouterr().out


def test_label_stats_text(tmp_path, capsys):
    from tinysmile.cli import main

    truth = make_store(tmp_path / "s", unlabelled=3, labelled=20, flip_rate=0.1)
    with Store(tmp_path / "s", create=False) as s:
        ensure_audit(s, 10)
        r = Ratings(s, "audit", LabelConfig("majority", 1))
        set_config(s, r.config)
        while (img := r.next_for("ann")["image"]) is not None:
            r.vote(_req(), "ann", img, "yes" if truth[img]["true"] else "no")
        drawn = [x[0] for x in s.query("SELECT sample FROM queue_items WHERE queue='audit'")]
    wrong = sum(truth[i]["true"] != truth[i]["given"] for i in drawn)
    assert main(["label", "stats", "--store", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "rater ann: 10 votes" in out
    assert f"{wrong} wrong of 10 resolved" in out
    assert "Fleiss' kappa n/a" in out  # one rater per image: no agreement to measure
    lines = {ln.split()[0]: ln.split()[1:] for ln in out.splitlines()[-2:]}
    assert lines["synthetic"] == ["10", "10", "0", "0", "0"]  # imported, resolved, ...
    assert lines["unlabelled"] == ["0", "0", "0", "0", "3"]


def test_a_policy_set_elsewhere_applies_to_the_next_vote(tmp_path):
    """Two `label serve` processes on one store: the policy one of them sets is the one
    the other resolves its next vote with."""
    truth = make_store(tmp_path / "s", unlabelled=2)
    img = _unlabelled(truth)[0]
    with Store(tmp_path / "s") as a, Store(tmp_path / "s") as b:
        ra = Ratings(a, "unlabelled", LabelConfig("majority", 3))
        ra.vote(_req(), "ann", img, "yes")
        Ratings(b, "unlabelled", LabelConfig("majority", 2))
        ra.vote(_req(), "bob", img, "yes")
        assert a.query("SELECT rating, rated_label FROM samples WHERE id=?", (img,)) == [
            ("resolved", 1)
        ]
