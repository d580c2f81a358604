"""`tinysmile label stats`: raters, their agreement, the audited label-error rate.

Agreement is Fleiss' kappa in its form for a varying number of raters per image (each
image's share of agreeing rater pairs against the agreement the pooled answer shares
would give by chance); with two raters per image it equals Scott's pi.

The audit: a seeded random sample of labelled images is rated; where the raters
resolve a label, it is compared with the label the import gave. The share of
mismatches estimates the dataset's label-error rate, with a Wilson score interval
(it keeps its coverage near 0 and at small counts, where the normal one does not).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from tinysmile.data.store import Store
from tinysmile.data.votes import UNSURE
from tinysmile.label.ratings import SKIP, TASK, get_config, rate_per_hour

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


def wilson_interval(errors: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion errors/n."""
    if n <= 0:
        raise ValueError("an interval needs at least one observation")
    p = errors / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def fleiss_kappa(counts: list[dict[str, int]]) -> float | None:
    """Fleiss' kappa over images given as {answer: how many raters gave it}.

    Images with fewer than two answers carry no agreement and are left out; None when
    no image is left, or when every answer is the same class (chance agreement is 1).
    """
    rows = [c for c in counts if sum(c.values()) >= 2]
    if not rows:
        return None
    total: Counter[str] = Counter()
    observed = 0.0
    for c in rows:
        n = sum(c.values())
        observed += sum(k * (k - 1) for k in c.values()) / (n * (n - 1))
        total.update(c)
    observed /= len(rows)
    answers = sum(total.values())
    chance = sum((k / answers) ** 2 for k in total.values())
    if chance >= 1.0:
        return None
    return (observed - chance) / (1 - chance)


def label_stats(store: Store) -> dict[str, Any]:
    """Everything `label stats` prints, as one JSON-ready dict."""
    config = get_config(store)
    votes = store.query(
        "SELECT rater, sample, answer, at FROM votes WHERE task=? AND undone IS NULL ORDER BY vote",
        (TASK,),
    )
    raters: dict[str, dict[str, Any]] = {}
    times: dict[str, list[float]] = defaultdict(list)
    per_image: dict[str, Counter[str]] = defaultdict(Counter)
    for rater, sample, answer, at in votes:
        r = raters.setdefault(rater, {"votes": 0, "yes": 0, "no": 0, UNSURE: 0, SKIP: 0})
        r[answer] += 1
        if answer != SKIP:
            r["votes"] += 1
            times[rater].append(at)
        if answer in ("yes", "no"):
            per_image[sample][answer] += 1
    for rater, r in raters.items():
        r["per_hour"] = rate_per_hour(sorted(times[rater]))

    pairs = agree = 0
    for c in per_image.values():
        n = sum(c.values())
        pairs += n * (n - 1) // 2
        agree += sum(k * (k - 1) // 2 for k in c.values())
    agreement = {
        "images_with_two_or_more": sum(1 for c in per_image.values() if sum(c.values()) >= 2),
        "pairwise_agreement": agree / pairs if pairs else None,
        "fleiss_kappa": fleiss_kappa(list(per_image.values())),
    }

    audit = audit_estimate(store)

    sources: dict[str, dict[str, int]] = {}
    for source, labelled, rating, n in store.query(
        "SELECT source, label IS NOT NULL, COALESCE(rating, ''), COUNT(*) FROM samples"
        " WHERE task=? GROUP BY 1, 2, 3",
        (TASK,),
    ):
        s = sources.setdefault(
            source, {"imported_label": 0, "resolved": 0, "pending": 0, "dropped": 0, "unrated": 0}
        )
        if rating == "resolved":
            s["resolved"] += n
        elif rating == "dropped":
            s["dropped"] += n
        elif rating == "pending" and not labelled:
            s["pending"] += n
        elif labelled:
            # Labelled by its import, with no (or not yet enough) rater votes.
            s["imported_label"] += n
        else:
            s["unrated"] += n

    suspects = store.query(
        "SELECT COUNT(*), SUM(s.rating='resolved'),"
        " SUM(s.rating='resolved' AND s.rated_label != s.label)"
        " FROM queue_items q JOIN samples s ON s.id=q.sample AND s.task=q.task"
        " WHERE q.queue='suspects' AND q.task=?",
        (TASK,),
    )[0]
    return {
        "store": str(store.root),
        "task": TASK,
        "policy": config.policy,
        "raters_per_image": config.raters,
        "votes": sum(r["votes"] for r in raters.values()),
        "raters": raters,
        "agreement": agreement,
        "audit": audit,
        "suspects": {
            "ranked": suspects[0],
            "resolved": suspects[1] or 0,
            "label_changed": suspects[2] or 0,
        },
        "sources": sources,
    }


def audit_estimate(store: Store) -> dict[str, Any]:
    """The audited label-error rate and its 95 % interval (None until one image resolves)."""
    rows = store.query(
        "SELECT s.label, s.rating, s.rated_label FROM queue_items q JOIN samples s"
        " ON s.id=q.sample AND s.task=q.task WHERE q.queue='audit' AND q.task=?",
        (TASK,),
    )
    resolved = [(label, rated) for label, rating, rated in rows if rating == "resolved"]
    errors = sum(1 for label, rated in resolved if label != rated)
    out: dict[str, Any] = {
        "sample": len(rows),
        "resolved": len(resolved),
        "dropped": sum(1 for _, rating, _ in rows if rating == "dropped"),
        "pending": sum(1 for _, rating, _ in rows if rating not in ("resolved", "dropped")),
        "wrong_labels": errors,
        "error_rate": None,
        "interval95": None,
    }
    if resolved:
        out["error_rate"] = errors / len(resolved)
        out["interval95"] = list(wilson_interval(errors, len(resolved)))
    return out


def format_label_stats(s: dict[str, Any]) -> str:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    lines = [
        (
            f"store {s['store']} (task {s['task']}): {s['votes']} votes, policy {s['policy']}, "
            f"{s['raters_per_image']} rater(s) per image"
        )
    ]
    for name, r in sorted(s["raters"].items()):
        speed = "n/a" if r["per_hour"] is None else f"{r['per_hour']:.0f}/hour"
        lines.append(
            f"  rater {name}: {r['votes']} votes ({r['yes']} yes, {r['no']} no, "
            f"{r[UNSURE]} unsure), {r[SKIP]} skipped, {speed}"
        )
    a = s["agreement"]
    kappa = "n/a" if a["fleiss_kappa"] is None else f"{a['fleiss_kappa']:.3f}"
    lines.append(
        f"agreement: {a['images_with_two_or_more']} images with 2+ decisive votes, "
        f"pairwise {pct(a['pairwise_agreement'])}, Fleiss' kappa {kappa}"
    )
    au = s["audit"]
    if au["sample"]:
        if au["error_rate"] is None:
            lines.append(f"audit: {au['sample']} images drawn, none resolved yet")
        else:
            lo, hi = au["interval95"]
            lines.append(
                f"audit: label error {pct(au['error_rate'])} (95% interval {pct(lo)} to "
                f"{pct(hi)}): {au['wrong_labels']} wrong of {au['resolved']} resolved; "
                f"{au['pending']} pending, {au['dropped']} dropped, of {au['sample']} drawn"
            )
    su = s["suspects"]
    if su["ranked"]:
        lines.append(
            f"suspects: {su['ranked']} ranked, {su['resolved']} resolved, "
            f"{su['label_changed']} of those relabelled by the raters"
        )
    lines.append(
        "  "
        + "source".ljust(16)
        + "".join(h.rjust(12) for h in ("imported", "resolved", "pending", "dropped", "unrated"))
    )
    for source, c in sorted(s["sources"].items()):
        lines.append(
            "  "
            + source.ljust(16)
            + "".join(
                str(c[k]).rjust(12)
                for k in ("imported_label", "resolved", "pending", "dropped", "unrated")
            )
        )
    return "\n".join(lines)
