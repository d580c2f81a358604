"""Rater votes in the dataset store: queues, one transaction per vote, resolution.

Every answer a rater gives is one row of the store's `votes` table, written in its own
transaction before the answer is acknowledged. A request carries an id chosen by the
client, unique per vote: the id is the table's UNIQUE key, so a retried request finds
its row and changes nothing. Undo marks a row undone (it is never deleted), so a vote
request retried after its undo stays a no-op too.

After each vote or undo the sample's `rating`, `rated_label` and `rated_votes` columns
are recomputed from its votes under the store's policy (`data.votes.resolve`, the same
resolution `data import votes` uses), in the same transaction; `Store.samples()` then
hands training the resolved labels. The policy lives in the store's meta table; changing
it re-resolves every sample, since every vote is kept.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tinysmile.data.store import Store
from tinysmile.data.votes import POLICIES, UNSURE, resolve, votes_needed
from tinysmile.errors import TinysmileError

QUEUES = ("unlabelled", "audit", "suspects")
# What a rater can answer on the page; a skip only hides the image from that rater, it is
# not a vote. TASK is the task a rating session rates unless told another.
SKIP = "skip"
TASK = "smile"
# Per task: (key, answer, what the page's button says) of each decisive answer, in the
# order of the page's buttons; every task also takes unsure (u) and skip (space). The
# answers are the ones tinysmile.data.votes resolves for the task.
TASK_KEYS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "smile": (("y", "yes", "smile"), ("n", "no", "no smile")),
    "attitude": (
        ("1", "negative", "negative"),
        ("2", "neutral", "neutral"),
        ("3", "positive", "positive"),
    ),
}
COMMON_KEYS = (("u", UNSURE, "can't tell"), (" ", SKIP, "skip"))
QUESTIONS = {
    "smile": "Is the person smiling?",
    "attitude": "Is the person's attitude negative, neutral or positive?",
}


def check_label_task(task: str) -> str:
    if task not in TASK_KEYS:
        raise TinysmileError(f"unknown task {task!r}; choose one of {', '.join(TASK_KEYS)}")
    return task


def answers_for(task: str) -> tuple[str, ...]:
    """Every answer the page may send for a task: its decisive ones, unsure and skip."""
    return tuple(a for _, a, _ in TASK_KEYS[check_label_task(task)] + COMMON_KEYS)


def page_keys(task: str) -> dict[str, Any]:
    """What the rating page shows for a task: its question and each key's answer."""
    keys = TASK_KEYS[check_label_task(task)] + COMMON_KEYS
    return {
        "task": task,
        "question": QUESTIONS[task],
        "keys": [{"key": k, "answer": a, "text": t} for k, a, t in keys],
    }


ANSWERS = answers_for(TASK)

DEFAULT_POLICY = "majority"
DEFAULT_RATERS = 2
# Gaps between a rater's votes longer than this are breaks, not rating time.
BREAK_SECONDS = 300.0

_RATER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.@-]{0,39}$")
_SAMPLE = re.compile(r"^[0-9a-f]{64}$")
_REQUEST = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class RatingError(TinysmileError):
    """A request the rating server refuses; `status` is the HTTP status it maps to."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class LabelConfig:
    """How votes become labels in one store."""

    policy: str = DEFAULT_POLICY
    raters: int = DEFAULT_RATERS  # votes per image (majority); the two-rater policies fix it

    def check(self) -> LabelConfig:
        if self.policy not in POLICIES:
            raise TinysmileError(
                f"unknown resolution policy {self.policy!r}; choose one of {', '.join(POLICIES)}"
            )
        if not 1 <= self.raters <= 25:
            raise TinysmileError(f"--raters-per-image must be in 1..25, got {self.raters}")
        return self


def check_rater(name: Any) -> str:
    if not isinstance(name, str) or not _RATER.match(name.strip()):
        raise RatingError(
            "rater: 1 to 40 letters, digits, spaces or _.@- , starting with a letter or digit"
        )
    return name.strip()


def check_sample_id(sample: Any) -> str:
    if not isinstance(sample, str) or not _SAMPLE.match(sample):
        raise RatingError("image: expected a 64-digit lower-case hex id", 404)
    return sample


def check_request_id(request: Any) -> str:
    if not isinstance(request, str) or not _REQUEST.match(request):
        raise RatingError("request: expected an id of 8 to 64 letters, digits, _ or -")
    return request


# -- the store's policy --------------------------------------------------------------


def get_config(store: Store) -> LabelConfig:
    return _read_config(store.connection)


def _read_config(db: sqlite3.Connection) -> LabelConfig:
    rows = dict(
        db.execute("SELECT key, value FROM meta WHERE key IN ('label.policy', 'label.raters')")
    )
    return LabelConfig(
        policy=rows.get("label.policy", DEFAULT_POLICY),
        raters=int(rows.get("label.raters", DEFAULT_RATERS)),
    )


def set_config(store: Store, config: LabelConfig) -> bool:
    """Make `config` the store's policy; re-resolves every rated sample when it changed."""
    config.check()
    if config == get_config(store):
        return False
    db = store.connection
    with _immediate(db):
        db.executemany(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
            [("label.policy", config.policy), ("label.raters", str(config.raters))],
        )
        for sample, task in db.execute("SELECT DISTINCT sample, task FROM votes").fetchall():
            _refresh(db, sample, task, config)
    return True


@contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taking SQLite's write lock up front (no upgrade deadlock
    between two writers that both read first)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.rollback()
        raise
    else:
        db.commit()


def _refresh(db: sqlite3.Connection, sample: str, task: str, config: LabelConfig) -> None:
    answers = [
        a
        for (a,) in db.execute(
            "SELECT answer FROM votes WHERE sample=? AND task=? AND undone IS NULL"
            " AND answer != ? ORDER BY vote",
            (sample, task, SKIP),
        )
    ]
    if not answers:
        rating, label = None, None
    elif len(answers) < votes_needed(answers, config.policy, config.raters):
        rating, label = "pending", None
    else:
        r = resolve(answers, task, config.policy)
        rating, label = ("dropped", None) if r.label is None else ("resolved", r.label)
    db.execute(
        "UPDATE samples SET rating=?, rated_label=?, rated_votes=? WHERE id=? AND task=?",
        (rating, label, len(answers), sample, task),
    )


# -- queues ----------------------------------------------------------------------------


def audit_rank(seed: int, sample: str) -> str:
    """The audit sample's order: a seeded hash, so the same seed draws the same images
    on every machine and a larger audit is a superset of a smaller one."""
    return hashlib.sha256(f"{seed}:{sample}".encode()).hexdigest()


def ensure_audit(store: Store, size: int, seed: int = 0, task: str = TASK) -> int:
    """Draw (or extend) the store's audit sample of labelled images; returns its size."""
    if size < 1:
        raise TinysmileError(f"--audit-size must be >= 1, got {size}")
    db = store.connection
    stored = dict(store.query("SELECT key, value FROM meta WHERE key='label.audit_seed'"))
    if "label.audit_seed" in stored and int(stored["label.audit_seed"]) != seed:
        raise TinysmileError(
            f"this store's audit sample was drawn with seed {stored['label.audit_seed']}; "
            "a different seed would mix two samples (use that seed)"
        )
    labelled = [
        r[0]
        for r in store.query("SELECT id FROM samples WHERE task=? AND label IS NOT NULL", (task,))
    ]
    if not labelled:
        raise TinysmileError(f"{store.root}: no labelled images to audit")
    chosen = sorted(labelled, key=lambda s: audit_rank(seed, s))[:size]
    with _immediate(db):
        db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('label.audit_seed', ?)", (str(seed),)
        )
        db.executemany(
            "INSERT OR IGNORE INTO queue_items(queue, task, sample, rank) VALUES"
            " ('audit', ?, ?, ?)",
            [(task, s, i) for i, s in enumerate(chosen)],
        )
    return store.query("SELECT COUNT(*) FROM queue_items WHERE queue='audit' AND task=?", (task,))[
        0
    ][0]


def set_suspects(store: Store, ranked: list[tuple[str, float]]) -> None:
    """Replace the suspects queue with `ranked` (sample id, score), most suspect first."""
    db = store.connection
    with _immediate(db):
        db.execute("DELETE FROM queue_items WHERE queue='suspects' AND task=?", (TASK,))
        db.executemany(
            "INSERT INTO queue_items(queue, task, sample, rank, score) VALUES"
            " ('suspects', ?, ?, ?, ?)",
            [(TASK, s, i, float(score)) for i, (s, score) in enumerate(ranked)],
        )


def _queue_sql(queue: str) -> tuple[str, str]:
    """(FROM ... WHERE condition, ORDER BY key) selecting a queue's samples `s`."""
    if queue == "unlabelled":
        return "samples s WHERE s.task=? AND s.label IS NULL", "s.id"
    return (
        (
            "samples s JOIN queue_items q ON q.sample=s.id AND q.task=s.task"
            f" AND q.queue='{queue}' WHERE s.task=?"
        ),
        "q.rank",
    )


@dataclass
class VoteResult:
    vote: int
    sample: str
    answer: str
    repeated: bool  # the request was seen before: nothing changed


class Ratings:
    """The rating service over one store and one queue; safe to share between threads.

    `config`, when given, becomes the store's policy; votes are always resolved with the
    policy the store holds at the time.
    """

    def __init__(
        self, store: Store, queue: str, config: LabelConfig | None = None, task: str = TASK
    ) -> None:
        if queue not in QUEUES:
            raise TinysmileError(f"unknown queue {queue!r}; choose one of {', '.join(QUEUES)}")
        self.store = store
        self.queue = queue
        self.task = check_label_task(task)
        self.answers = answers_for(task)
        if config is not None:
            set_config(store, config)  # a no-op when it is the store's policy already
        self.config = get_config(store)
        # One connection, many request threads: SQLite would serialise the writes anyway.
        self._lock = threading.Lock()
        if queue != "unlabelled" and not store.query(
            "SELECT 1 FROM queue_items WHERE queue=? AND task=? LIMIT 1", (queue, self.task)
        ):
            hint = {
                "audit": "draw it with --audit-size",
                "suspects": "rank them first with `tinysmile label suspects`",
            }[queue]
            raise TinysmileError(f"{store.root}: the {queue} queue is empty ({hint})")

    # -- reading -----------------------------------------------------------------------

    def _pending_sql(self) -> tuple[str, str]:
        source, order = _queue_sql(self.queue)
        where = (
            f"{source} AND COALESCE(s.rating, 'pending')='pending' AND NOT EXISTS"
            " (SELECT 1 FROM votes v WHERE v.sample=s.id AND v.task=s.task AND v.rater=?"
            " AND v.undone IS NULL)"
        )
        # Images other raters started come first, so images finish (and resolve) early.
        return where, f"s.rated_votes DESC, {order}"

    def next_for(self, rater: str) -> dict[str, Any]:
        """The next image for `rater` (None when the queue is done for them) and progress."""
        rater = check_rater(rater)
        where, order = self._pending_sql()
        with self._lock:
            row = self.store.connection.execute(
                f"SELECT s.id FROM {where} ORDER BY {order} LIMIT 1", (self.task, rater)
            ).fetchone()
            left = self.store.connection.execute(
                f"SELECT COUNT(*) FROM {where}", (self.task, rater)
            ).fetchone()[0]
            progress = self._progress(rater)
        return {"image": row[0] if row else None, "left": left, **progress}

    def _progress(self, rater: str) -> dict[str, Any]:
        db = self.store.connection
        times = [
            t
            for (t,) in db.execute(
                "SELECT at FROM votes WHERE rater=? AND undone IS NULL AND answer != ? ORDER BY at",
                (rater, SKIP),
            )
        ]
        last = db.execute(
            "SELECT request FROM votes WHERE rater=? AND undone IS NULL ORDER BY vote DESC LIMIT 1",
            (rater,),
        ).fetchone()
        return {
            "rated": len(times),
            "per_hour": rate_per_hour(times),
            "last": last[0] if last else None,
        }

    def in_queue(self, sample: str) -> bool:
        source, _ = _queue_sql(self.queue)
        return (
            self.store.connection.execute(
                f"SELECT 1 FROM {source} AND s.id=?", (self.task, sample)
            ).fetchone()
            is not None
        )

    def image_file(self, sample: str) -> str:
        """The stored file of an image, by id only (never a path from the request)."""
        sample = check_sample_id(sample)
        with self._lock:
            row = self.store.connection.execute(
                "SELECT file FROM samples WHERE id=? AND task=?", (sample, self.task)
            ).fetchone()
        if row is None:
            raise RatingError("no such image", 404)
        return str(self.store.root / row[0])

    # -- writing -----------------------------------------------------------------------

    def vote(self, request: Any, rater: Any, sample: Any, answer: Any) -> VoteResult:
        """Store one answer, in its own transaction; a repeated request changes nothing."""
        request = check_request_id(request)
        rater = check_rater(rater)
        sample = check_sample_id(sample)
        if answer not in self.answers:
            raise RatingError(f"answer: one of {', '.join(self.answers)}")
        db = self.store.connection
        with self._lock, _immediate(db):
            seen = db.execute(
                "SELECT vote, rater, sample, answer FROM votes WHERE request=?", (request,)
            ).fetchone()
            if seen is not None:
                if tuple(seen[1:]) != (rater, sample, answer):
                    raise RatingError("request id already used for another vote", 409)
                return VoteResult(seen[0], sample, answer, repeated=True)
            row = db.execute(
                "SELECT label FROM samples WHERE id=? AND task=?", (sample, self.task)
            ).fetchone()
            if row is None:
                raise RatingError("no such image", 404)
            if not self.in_queue(sample):
                raise RatingError(f"image is not in the {self.queue} queue", 409)
            if db.execute(
                "SELECT 1 FROM votes WHERE sample=? AND task=? AND rater=? AND undone IS NULL",
                (sample, self.task, rater),
            ).fetchone():
                raise RatingError("you already rated this image (undo it first)", 409)
            cur = db.execute(
                "INSERT INTO votes(request, sample, task, rater, queue, answer, given_label, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (request, sample, self.task, rater, self.queue, answer, row[0], time.time()),
            )
            # The store's policy, read in this transaction: another `label serve` on the
            # same store may have changed it since this one started.
            _refresh(db, sample, self.task, _read_config(db))
            return VoteResult(int(cur.lastrowid), sample, answer, repeated=False)

    def undo(self, request: Any, rater: Any) -> dict[str, Any]:
        """Undo the rater's vote made by `request`; undoing it again changes nothing.

        Returns the image it was about, so the page shows it again.
        """
        request = check_request_id(request)
        rater = check_rater(rater)
        db = self.store.connection
        with self._lock, _immediate(db):
            row = db.execute(
                "SELECT sample, task, undone FROM votes WHERE request=? AND rater=?",
                (request, rater),
            ).fetchone()
            if row is None:
                raise RatingError("no such vote of yours", 404)
            if row[2] is None:
                db.execute("UPDATE votes SET undone=? WHERE request=?", (time.time(), request))
                _refresh(db, row[0], row[1], _read_config(db))
        return {"image": row[0], "repeated": row[2] is not None}


def rate_per_hour(times: list[float]) -> float | None:
    """Votes per hour from vote times: the median gap between votes, breaks left out."""
    gaps = [b - a for a, b in itertools.pairwise(times) if 0 <= b - a <= BREAK_SECONDS]
    if not gaps:
        return None
    median = statistics.median(gaps)
    # Two votes in the same instant (a scripted rater): report no rate rather than inf.
    return 3600.0 / median if median > 0 else None
