"""Rater votes: resolve per-image answers into labels, and measure how much raters agree.

Two CSV shapes are read (header names are case-insensitive):

* long: one row per vote, columns ``image``, ``answer`` and optionally ``rater``
  (without it, each row counts as a separate rater);
* wide: column ``image``, then one column per rater; an empty cell is no vote.

Answers: smile task ``yes`` / ``no`` / ``unsure`` (also y/n/1/0/smile/no_smile/?);
attitude task ``positive`` / ``neutral`` / ``negative`` / ``unsure``. ``unsure`` is a
vote that abstains.

Policies: ``majority`` (the most frequent decisive answer among all raters; ties and
images with fewer than ``min_votes`` decisive answers are dropped), ``two`` (the
first two raters of each image, in file order; dropped unless both answer and agree),
or ``two-then-third``, the cost-aware variant: two raters, and a third one only where
the first two do not agree; the third vote decides when it sides with one of them.

Label-error estimate: assume every rater independently gives a wrong answer with
probability e, spread evenly over the other K-1 classes. Two raters then agree with
probability (1-e)^2 + e^2/(K-1); solving that for the observed pairwise agreement
gives e, and from e follows the chance that a resolved label is wrong.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from tinysmile.data.listing import Item, Listing
from tinysmile.data.store import TASK_LABELS
from tinysmile.errors import TinysmileError

UNSURE = "unsure"
POLICIES = ("majority", "two", "two-then-third")

_ANSWERS: dict[str, dict[str, str]] = {
    "smile": {
        **dict.fromkeys(["yes", "y", "1", "true", "smile", "smiling"], "yes"),
        **dict.fromkeys(
            ["no", "n", "0", "false", "no_smile", "nosmile", "not_smiling", "no smile"], "no"
        ),
    },
    "attitude": {
        **dict.fromkeys(["positive", "pos", "2"], "positive"),
        **dict.fromkeys(["neutral", "neu", "1"], "neutral"),
        **dict.fromkeys(["negative", "neg", "0"], "negative"),
    },
}
_UNSURE_WORDS = ("unsure", "?", "maybe", "skip", "dont_know", "don't know", "not sure")
# The decisive answers of each task, in label order (index = label integer).
DECISIVE: dict[str, tuple[str, ...]] = {"smile": ("no", "yes"), "attitude": TASK_LABELS["attitude"]}

_IMAGE_COLS = ("image", "file", "filename", "path", "image_path")
_ANSWER_COLS = ("answer", "vote", "label", "response")
_RATER_COLS = ("rater", "worker", "annotator", "rater_id", "worker_id")


def normalise_answer(text: str, task: str) -> str | None:
    """The canonical answer for a raw cell, or None when it is not an answer at all."""
    t = text.strip().lower()
    if t in _UNSURE_WORDS:
        return UNSURE
    return _ANSWERS[task].get(t)


@dataclass
class ImageVotes:
    image: str
    votes: list[tuple[str, str]] = field(default_factory=list)  # (rater, answer) in file order

    def answers(self) -> list[str]:
        return [a for _, a in self.votes]


@dataclass
class Resolution:
    label: int | None  # None: dropped
    reason: str  # why dropped, or "" when kept
    agreement: float | None  # fraction of agreeing pairs of decisive votes
    agree_pairs: int
    pairs: int
    decisive: int  # decisive votes the label rests on


def pair_agreement(answers: list[str]) -> tuple[int, int]:
    """(agreeing pairs, pairs) among the decisive answers."""
    decisive = [a for a in answers if a != UNSURE]
    n = len(decisive)
    pairs = n * (n - 1) // 2
    agree = sum(c * (c - 1) // 2 for c in (decisive.count(v) for v in set(decisive)))
    return agree, pairs


def resolve(
    answers: list[str], task: str, policy: str = "majority", min_votes: int = 1
) -> Resolution:
    """Turn one image's answers into a label (or a reason to drop it)."""
    if policy not in POLICIES:
        raise TinysmileError(
            f"unknown votes policy {policy!r}; choose one of {', '.join(POLICIES)}"
        )
    classes = DECISIVE[task]
    agree, pairs = pair_agreement(answers)
    agreement = agree / pairs if pairs else None
    if policy in ("two", "two-then-third"):
        if len(answers) < 2:
            return Resolution(None, "fewer than two votes", agreement, agree, pairs, 0)
        a, b = answers[:2]
        if a == b and a != UNSURE:
            return Resolution(classes.index(a), "", agreement, agree, pairs, 2)
        why = "a rater was unsure" if UNSURE in (a, b) else f"raters disagree ({a} vs {b})"
        if policy == "two" or len(answers) < 3:
            return Resolution(None, why, agreement, agree, pairs, 0)
        third = answers[2]
        if third != UNSURE and third in (a, b):
            return Resolution(classes.index(third), "", agreement, agree, pairs, 2)
        return Resolution(
            None,
            f"{why}, and the third vote ({third}) does not settle it",
            agreement,
            agree,
            pairs,
            0,
        )
    decisive = [a for a in answers if a != UNSURE]
    if len(decisive) < max(1, min_votes):
        return Resolution(
            None,
            f"{len(decisive)} decisive vote(s), need {max(1, min_votes)}",
            agreement,
            agree,
            pairs,
            len(decisive),
        )
    counts = {c: decisive.count(c) for c in classes}
    top = max(counts.values())
    winners = [c for c in classes if counts[c] == top]
    if len(winners) > 1:
        return Resolution(
            None, "tie between " + " and ".join(winners), agreement, agree, pairs, len(decisive)
        )
    return Resolution(classes.index(winners[0]), "", agreement, agree, pairs, len(decisive))


def votes_needed(answers: list[str], policy: str, raters: int) -> int:
    """How many votes an image needs before it leaves the rating queue.

    `raters` is the page's --raters-per-image; the two-rater policies fix it themselves.
    """
    if policy == "majority":
        return max(1, raters)
    if policy == "two" or len(answers) < 2:
        return 2
    a, b = answers[:2]
    return 2 if a == b and a != UNSURE else 3


def rater_error(pairwise_agreement: float, k: int) -> float:
    """Per-rater error e with (1-e)^2 + e^2/(k-1) = agreement (symmetric noise model)."""
    c = k / (k - 1)
    d = 1.0 - pairwise_agreement
    # Agreement below chance level has no solution with e < (k-1)/k; cap there.
    return (1.0 - math.sqrt(max(0.0, 1.0 - c * d))) / c


def resolved_error(e: float, k: int, policy: str, n: int) -> float:
    """Chance that a kept label is wrong, given rater error e and n decisive votes.

    For majority with k > 2 this treats every wrong answer as one class, which
    overstates the error a little (wrong answers split their votes in reality).
    """
    # two-then-third keeps a label when two votes agree on it (the first two, or the
    # third with one of them), so it is counted like `two`.
    if policy in ("two", "two-then-third"):
        both_wrong = e * e / (k - 1)
        return both_wrong / ((1 - e) ** 2 + both_wrong)
    if n <= 1:
        return e
    wrong = sum(math.comb(n, j) * e**j * (1 - e) ** (n - j) for j in range(n // 2 + 1, n + 1))
    tie = math.comb(n, n // 2) * (e * (1 - e)) ** (n // 2) if n % 2 == 0 else 0.0
    return wrong / (1 - tie) if tie < 1 else 0.0


def _pick(header: list[str], names: tuple[str, ...]) -> int | None:
    return next((header.index(n) for n in names if n in header), None)


def read_votes(csv_path: Path, task: str) -> tuple[list[ImageVotes], list[tuple[str, str]]]:
    """Votes per image (in first-seen order) and the rows that could not be used."""
    skipped: list[tuple[str, str]] = []
    by_image: dict[str, ImageVotes] = {}
    try:
        with csv_path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise TinysmileError(f"{csv_path}: cannot read ({exc.strerror or exc})") from None
    except csv.Error as exc:
        raise TinysmileError(f"{csv_path}: not a readable CSV ({exc})") from None
    if not rows:
        raise TinysmileError(f"{csv_path}: empty votes CSV")
    header = [h.strip().lower() for h in rows[0]]
    ii = _pick(header, _IMAGE_COLS)
    if ii is None:
        raise TinysmileError(f"{csv_path}: no image column (one of {', '.join(_IMAGE_COLS)})")
    ia, ir = _pick(header, _ANSWER_COLS), _pick(header, _RATER_COLS)
    long_form = ia is not None
    if not long_form and len(header) < 2:
        raise TinysmileError(f"{csv_path}: no answer column and no rater columns")
    for lineno, row in enumerate(rows[1:], start=2):
        where = f"{csv_path}:{lineno}"
        if not row or all(not c.strip() for c in row):
            continue
        row = row + [""] * (len(header) - len(row))
        image = row[ii].strip()
        if not image:
            skipped.append((where, "no image name"))
            continue
        iv = by_image.setdefault(image, ImageVotes(image))
        if long_form:
            rater = row[ir].strip() if ir is not None else f"row{lineno}"
            cells = [(rater, row[ia])]
        else:
            cells = [(header[j], row[j]) for j in range(len(header)) if j != ii and row[j].strip()]
        for rater, cell in cells:
            answer = normalise_answer(cell, task)
            if answer is None:
                skipped.append((where, f"answer {cell.strip()!r} is not a {task} answer"))
                continue
            if any(r == rater for r, _ in iv.votes):
                skipped.append((where, f"rater {rater} voted twice for {image}; first vote kept"))
                continue
            iv.votes.append((rater, answer))
    return [iv for iv in by_image.values() if iv.votes], skipped


def list_votes(
    path: Path,
    task: str,
    policy: str = "majority",
    min_votes: int = 1,
    images: Path | str | None = None,
    agreement_csv: Path | str | None = None,
) -> Listing:
    """Importer for a votes CSV: resolved labels as items, agreement in the listing."""
    if policy not in POLICIES:
        raise TinysmileError(
            f"unknown votes policy {policy!r}; choose one of {', '.join(POLICIES)}"
        )
    if not path.is_file():
        raise TinysmileError(f"{path}: a votes import needs the CSV file itself")
    image_root = Path(images).resolve() if images is not None else path.parent
    per_image, skipped = read_votes(path, task)
    listing = Listing(skipped=skipped)
    k = len(DECISIVE[task])
    resolutions = [resolve(iv.answers(), task, policy, min_votes) for iv in per_image]
    agree = sum(r.agree_pairs for r in resolutions)
    pairs = sum(r.pairs for r in resolutions)
    overall = agree / pairs if pairs else None
    e = rater_error(overall, k) if overall is not None else None
    per_image_agreement = [r.agreement for r in resolutions if r.agreement is not None]
    kept_errors: list[float] = []
    table: list[list[str]] = []
    for iv, r in zip(per_image, resolutions):
        status = "kept"
        if r.label is None:
            listing.dropped.append((iv.image, r.reason))
            status = f"dropped: {r.reason}"
        else:
            image = image_root / iv.image
            if not image.is_file():
                listing.skipped.append((str(image), "listed in the votes CSV but missing"))
                status = "missing"
            else:
                listing.items.append(
                    Item(
                        original=str(image),
                        label=r.label,
                        suffix=image.suffix,
                        path=image,
                        votes=[f"{rater}:{answer}" for rater, answer in iv.votes],
                        agreement=r.agreement,
                    )
                )
                if e is not None:
                    kept_errors.append(resolved_error(e, k, policy, r.decisive))
        table.append(
            [
                iv.image,
                " ".join(f"{rater}:{answer}" for rater, answer in iv.votes),
                TASK_LABELS[task][r.label] if r.label is not None else "",
                "" if r.agreement is None else f"{r.agreement:.4f}",
                status,
            ]
        )
    listing.agreement = {
        "policy": policy,
        "images": len(per_image),
        "kept": len(listing.items),
        "dropped": len(listing.dropped),
        "votes": sum(len(iv.votes) for iv in per_image),
        "pairs": pairs,
        "agreeing_pairs": agree,
        "pairwise_agreement": overall,
        "mean_image_agreement": (
            sum(per_image_agreement) / len(per_image_agreement) if per_image_agreement else None
        ),
        "rater_error": e,
        "label_error": sum(kept_errors) / len(kept_errors) if kept_errors else None,
    }
    if agreement_csv is not None:
        out = Path(agreement_csv)
        try:
            with out.open("w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["image", "votes", "label", "agreement", "status"])
                w.writerows(table)
        except OSError as exc:
            raise TinysmileError(f"{out}: cannot write ({exc.strerror or exc})") from None
    return listing
