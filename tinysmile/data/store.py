"""The dataset store: one SQLite file plus image files named by their content hash.

Layout of a store folder::

    DIR/
      store.sqlite     one row per (sample, task), import runs, duplicates, skipped files
      images/ab/abcdef...0123.jpg

A sample's id is the SHA-256 of its image file's bytes, so the same picture imported
twice (or from two datasets) is stored once, and its split, which is derived from the
hash unless the source dataset fixes one, is the same on every machine.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinysmile.errors import TinysmileError

DB_FILE = "store.sqlite"
IMAGES_DIR = "images"
SCHEMA_VERSION = 2

SPLITS = ("train", "val", "test")
# What each label integer means, per task; the bundle's labels come from here too.
TASK_LABELS: dict[str, tuple[str, ...]] = {
    "smile": ("no_smile", "smile"),
    "attitude": ("negative", "neutral", "positive"),
}

# The label training uses, as SQL over a samples row: the raters' when they resolved one,
# none when they disagree, the imported one otherwise (no votes yet, or too few).
EFFECTIVE_LABEL = (
    "(CASE rating WHEN 'resolved' THEN rated_label WHEN 'dropped' THEN NULL ELSE label END)"
)

# Percent of the hash space in train and val; the rest is test (80/10/10).
SPLIT_PERCENT = (80, 10)

_SAMPLES_TABLE = """
CREATE TABLE samples (
    id TEXT NOT NULL,           -- sha256 of the image file's bytes
    task TEXT NOT NULL,         -- 'smile' | 'attitude'
    file TEXT NOT NULL,         -- path relative to the store root
    source TEXT NOT NULL,       -- importer name, e.g. 'smilesmiled', 'genki4k'
    original TEXT NOT NULL,     -- where it came from (path, or CSV row)
    label INTEGER,              -- the label the import gave; NULL: unlabelled
    split TEXT NOT NULL,
    votes TEXT,                 -- JSON list of rater answers, NULL when none
    agreement REAL,             -- fraction of rater pairs that agree, NULL when none
    face_box TEXT,              -- JSON [x, y, w, h] in the stored image, NULL when unknown
    added REAL NOT NULL,
    -- What the votes table makes of this sample under the store's policy (kept in step
    -- with every vote by tinysmile.label.ratings): NULL (no votes), 'pending' (fewer
    -- votes than the policy needs), 'resolved' (rated_label holds the label) or
    -- 'dropped' (raters disagree or are unsure: left out of training).
    rating TEXT,
    rated_label INTEGER,
    rated_votes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (id, task)
);
"""
_DUPLICATES_TABLE = """
CREATE TABLE duplicates (
    id TEXT NOT NULL,
    task TEXT NOT NULL,
    source TEXT NOT NULL,
    original TEXT NOT NULL,
    label INTEGER,              -- NULL: the duplicate came unlabelled
    conflict INTEGER NOT NULL,  -- 1 when both are labelled and the labels differ
    PRIMARY KEY (id, task, source, original)
);
"""

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
    + _SAMPLES_TABLE.replace("CREATE TABLE samples", "CREATE TABLE IF NOT EXISTS samples")
    + _DUPLICATES_TABLE.replace("CREATE TABLE duplicates", "CREATE TABLE IF NOT EXISTS duplicates")
    + """
-- Every answer a rater gave through `tinysmile label serve`, one row per request.
CREATE TABLE IF NOT EXISTS votes (
    vote INTEGER PRIMARY KEY AUTOINCREMENT,
    request TEXT NOT NULL UNIQUE, -- the client's id for the request: a retry is a no-op
    sample TEXT NOT NULL,
    task TEXT NOT NULL,
    rater TEXT NOT NULL,
    queue TEXT NOT NULL,        -- 'unlabelled' | 'audit' | 'suspects'
    answer TEXT NOT NULL,       -- 'yes' | 'no' | 'unsure' | 'skip' (skip is not a vote)
    given_label INTEGER,        -- the sample's imported label when the vote was given
    at REAL NOT NULL,
    undone REAL                 -- when the rater undid it; the row stays, so a retried
                                -- vote request stays a no-op after an undo
);
-- A rater answers an image once (until that answer is undone).
CREATE UNIQUE INDEX IF NOT EXISTS votes_once ON votes(sample, task, rater)
    WHERE undone IS NULL;
CREATE INDEX IF NOT EXISTS votes_rater ON votes(rater, at);
-- Images of the ranked queues: 'audit' (a seeded random sample of labelled images) and
-- 'suspects' (labels the model disagrees with, most suspect first).
CREATE TABLE IF NOT EXISTS queue_items (
    queue TEXT NOT NULL,
    task TEXT NOT NULL,
    sample TEXT NOT NULL,
    rank INTEGER NOT NULL,
    score REAL,
    PRIMARY KEY (queue, task, sample)
);
CREATE TABLE IF NOT EXISTS imports (
    run INTEGER PRIMARY KEY AUTOINCREMENT,
    format TEXT NOT NULL,
    path TEXT NOT NULL,
    task TEXT NOT NULL,
    started REAL NOT NULL,
    report TEXT NOT NULL        -- JSON ImportReport
);
CREATE TABLE IF NOT EXISTS skipped (
    run INTEGER NOT NULL,
    original TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""
)


@dataclass(frozen=True)
class Sample:
    """One labelled image of the store, as training and evaluation see it."""

    id: str  # content hash (sha256 hex of the image file)
    path: Path  # absolute path of the image file
    # smile: 0 no smile, 1 smile; attitude: 0 negative, 1 neutral, 2 positive. The raters'
    # resolved label when there is one, else the imported label.
    label: int
    split: str  # 'train' | 'val' | 'test'
    source: str
    task: str = "smile"
    original: str = ""
    votes: tuple[str, ...] | None = None
    agreement: float | None = None
    face_box: tuple[int, int, int, int] | None = None  # x, y, w, h


@dataclass
class AddResult:
    """What happened to one image offered to the store."""

    added: bool
    id: str
    duplicate: bool = False
    conflict: bool = False


@dataclass
class ImportReport:
    """Counts of one import run; `skipped` lists (what, why) for every file left out."""

    format: str
    path: str
    task: str
    seen: int = 0
    added: int = 0
    present: int = 0  # already in the store from this very source (a re-import)
    duplicates: int = 0  # same content as a stored sample from elsewhere
    conflicts: int = 0  # duplicates whose label differs from the stored one
    skipped: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)  # unresolved votes
    agreement: dict[str, Any] | None = None  # votes: overall agreement figures

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "path": self.path,
            "task": self.task,
            "seen": self.seen,
            "added": self.added,
            "present": self.present,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "skipped": [list(s) for s in self.skipped],
            "dropped": [list(d) for d in self.dropped],
            "agreement": self.agreement,
        }


def check_task(task: str) -> str:
    if task not in TASK_LABELS:
        raise TinysmileError(f"unknown task {task!r}; choose one of {', '.join(TASK_LABELS)}")
    return task


def hash_bucket(sample_id: str) -> int:
    """0-99 from the content hash: where the sample falls in the split's hash space."""
    return int(sample_id[:8], 16) % 100


def split_for_hash(sample_id: str) -> str:
    """Deterministic 80/10/10 split from the content hash (stable across machines)."""
    bucket = hash_bucket(sample_id)
    if bucket < SPLIT_PERCENT[0]:
        return "train"
    if bucket < SPLIT_PERCENT[0] + SPLIT_PERCENT[1]:
        return "val"
    return "test"


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Store:
    """A dataset store folder; created on first use."""

    def __init__(self, root: str | Path, *, create: bool = True) -> None:
        self.root = Path(root).resolve()
        db = self.root / DB_FILE
        if not db.exists():
            if not create:
                raise TinysmileError(f"{self.root}: no dataset store here (no {DB_FILE})")
            if self.root.exists() and not self.root.is_dir():
                raise TinysmileError(f"{self.root}: exists and is not a folder")
            self.root.mkdir(parents=True, exist_ok=True)
        try:
            # check_same_thread=False: `label serve` answers from several threads and
            # serialises its use of the connection with a lock of its own.
            self._db = sqlite3.connect(db, timeout=30, check_same_thread=False)
            # WAL: a rater's vote commits without blocking readers, and a killed process
            # loses no committed transaction.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            version = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if version is None:
                self._db.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )
                self._db.commit()
            elif int(version[0]) == 1:
                self._migrate_v1()
            elif int(version[0]) != SCHEMA_VERSION:
                raise TinysmileError(
                    f"{db}: store schema {version[0]}, this tinysmile reads {SCHEMA_VERSION}"
                )
        except sqlite3.DatabaseError as exc:
            raise TinysmileError(f"{db}: not a usable dataset store ({exc})") from None

    def _migrate_v1(self) -> None:
        """Schema 1 -> 2: `label` may be NULL (unlabelled), the rating columns appear.

        SQLite cannot drop a NOT NULL constraint in place, so the tables whose `label`
        may now be NULL are rebuilt, all in one transaction.
        """
        samples = (
            "id, task, file, source, original, label, split, votes, agreement, face_box, added"
        )
        duplicates = "id, task, source, original, label, conflict"
        script = "BEGIN;"
        for table, create, cols in (
            ("samples", _SAMPLES_TABLE, samples),
            ("duplicates", _DUPLICATES_TABLE, duplicates),
        ):
            script += (
                f"ALTER TABLE {table} RENAME TO {table}_v1;{create}"
                f"INSERT INTO {table}({cols}) SELECT {cols} FROM {table}_v1;"
                f"DROP TABLE {table}_v1;"
            )
        script += f"UPDATE meta SET value='{SCHEMA_VERSION}' WHERE key='schema';COMMIT;"
        self._db.executescript(script)

    @property
    def connection(self) -> sqlite3.Connection:
        """The store's SQLite connection, for tinysmile.label's vote transactions."""
        return self._db

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Batch many adds into one commit (an import of 10k files stays fast)."""
        try:
            yield
        except BaseException:
            self._db.rollback()
            raise
        else:
            self._db.commit()

    # -- writing ---------------------------------------------------------------------

    def _image_relpath(self, sample_id: str, suffix: str) -> str:
        return f"{IMAGES_DIR}/{sample_id[:2]}/{sample_id}{suffix}"

    def add_image(
        self,
        data: bytes,
        *,
        suffix: str,
        label: int | None,
        task: str,
        source: str,
        original: str,
        split: str | None = None,
        votes: list[str] | None = None,
        agreement: float | None = None,
        face_box: tuple[int, int, int, int] | None = None,
    ) -> AddResult:
        """Store one already-validated image; a known hash is recorded as a duplicate.

        Call inside `transaction()`; nothing is committed here. `label` None stores an
        unlabelled sample: training and evaluation leave it out until it is labelled.
        """
        check_task(task)
        if label is not None and not 0 <= label < len(TASK_LABELS[task]):
            raise TinysmileError(f"{original}: label {label} out of range for task {task!r}")
        if split is not None and split not in SPLITS:
            raise TinysmileError(f"{original}: unknown split {split!r}")
        sample_id = content_hash(data)
        row = self._db.execute(
            "SELECT label, source, original FROM samples WHERE id=? AND task=?",
            (sample_id, task),
        ).fetchone()
        if row is not None:
            if (row[1], row[2]) == (source, original):
                # Re-importing the very same file: not a duplicate, just nothing to do.
                return AddResult(added=False, id=sample_id)
            conflict = int(row[0] is not None and label is not None and row[0] != label)
            self._db.execute(
                "INSERT OR IGNORE INTO duplicates(id, task, source, original, label, conflict)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (sample_id, task, source, original, label, conflict),
            )
            return AddResult(added=False, id=sample_id, duplicate=True, conflict=bool(conflict))
        rel = self._image_relpath(sample_id, suffix.lower())
        target = self.root / rel
        # The file lands before the row commits; after a crash it is an orphan that the
        # next import of the same content simply reuses (names are content hashes).
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(target)
        self._db.execute(
            "INSERT INTO samples(id, task, file, source, original, label, split, votes,"
            " agreement, face_box, added) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                sample_id,
                task,
                rel,
                source,
                original,
                None if label is None else int(label),
                split or split_for_hash(sample_id),
                json.dumps(list(votes)) if votes is not None else None,
                agreement,
                json.dumps([int(v) for v in face_box]) if face_box is not None else None,
                time.time(),
            ),
        )
        return AddResult(added=True, id=sample_id)

    def record_import(self, report: ImportReport) -> None:
        cur = self._db.execute(
            "INSERT INTO imports(format, path, task, started, report) VALUES (?, ?, ?, ?, ?)",
            (report.format, report.path, report.task, time.time(), json.dumps(report.to_dict())),
        )
        self._db.executemany(
            "INSERT INTO skipped(run, original, reason) VALUES (?, ?, ?)",
            [(cur.lastrowid, what, why) for what, why in report.skipped],
        )
        self._db.commit()

    # -- reading ---------------------------------------------------------------------

    def samples(self, split: str | None = None, task: str = "smile") -> list[Sample]:
        """The labelled samples of a task (optionally one split), ordered by id.

        A sample's label is what its raters resolved (`tinysmile label`), else what its
        import said; unlabelled samples still waiting for raters and samples whose
        raters disagree (dropped) are left out.
        """
        check_task(task)
        if split is not None and split not in SPLITS:
            raise TinysmileError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        query = (
            f"SELECT id, file, {EFFECTIVE_LABEL}, split, source, task, original, votes,"
            f" agreement, face_box FROM samples WHERE task=? AND {EFFECTIVE_LABEL} IS NOT NULL"
        )
        args: list[Any] = [task]
        if split is not None:
            query += " AND split=?"
            args.append(split)
        query += " ORDER BY id"
        out = []
        for row in self._db.execute(query, args):
            votes = tuple(json.loads(row[7])) if row[7] is not None else None
            box = tuple(json.loads(row[9])) if row[9] is not None else None
            out.append(
                Sample(
                    id=row[0],
                    path=self.root / row[1],
                    label=row[2],
                    split=row[3],
                    source=row[4],
                    task=row[5],
                    original=row[6],
                    votes=votes,
                    agreement=row[8],
                    face_box=box,  # type: ignore[arg-type]
                )
            )
        return out

    def count(self, task: str | None = None) -> int:
        if task is None:
            return self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM samples WHERE task=?", (task,)).fetchone()[0]

    def sources(self, task: str = "smile") -> list[str]:
        """Importers that contributed samples to a task (feeds `spec_for_sources`)."""
        rows = self._db.execute(
            "SELECT DISTINCT source FROM samples WHERE task=? ORDER BY source", (task,)
        )
        return [r[0] for r in rows]

    def tasks(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT task FROM samples ORDER BY task")]

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read-only helper for stats; not for callers outside tinysmile.data."""
        return list(self._db.execute(sql, args))

    def stats(self) -> dict[str, Any]:
        """Class balance per split, sources, rater agreement, duplicates, import runs."""
        out: dict[str, Any] = {"store": str(self.root), "samples": self.count(), "tasks": {}}
        for task in self.tasks():
            names = TASK_LABELS[task]

            def by_label(rows: list[tuple[Any, ...]], names: tuple[str, ...] = names) -> dict:
                counts = dict.fromkeys(names, 0)
                for label, n in rows:
                    counts[names[label] if label is not None else "unlabelled"] = n
                return {**counts, "total": sum(counts.values())}

            splits = {
                split: by_label(
                    self.query(
                        f"SELECT {EFFECTIVE_LABEL} AS l, COUNT(*) FROM samples"
                        " WHERE task=? AND split=? AND l IS NOT NULL GROUP BY l",
                        (task, split),
                    )
                )
                for split in SPLITS
            }
            sources = {
                source: by_label(
                    self.query(
                        f"SELECT {EFFECTIVE_LABEL} AS l, COUNT(*) FROM samples"
                        " WHERE task=? AND source=? AND l IS NOT NULL GROUP BY l",
                        (task, source),
                    )
                )
                for (source,) in self.query(
                    "SELECT DISTINCT source FROM samples WHERE task=? ORDER BY source", (task,)
                )
            }
            voted, mean_agreement = self.query(
                "SELECT COUNT(*), AVG(agreement) FROM samples WHERE task=? AND agreement"
                " IS NOT NULL",
                (task,),
            )[0]
            dup, conflicts = self.query(
                "SELECT COUNT(*), COALESCE(SUM(conflict), 0) FROM duplicates WHERE task=?",
                (task,),
            )[0]
            unlabelled = self.query(
                f"SELECT COUNT(*) FROM samples WHERE task=? AND {EFFECTIVE_LABEL} IS NULL",
                (task,),
            )[0][0]
            out["tasks"][task] = {
                "samples": self.count(task),
                "without_label": unlabelled,
                "labels": list(names),
                "splits": splits,
                "sources": sources,
                "agreement": {"images_with_votes": voted, "mean_image_agreement": mean_agreement},
                "duplicates": {"files": dup, "conflicting_labels": conflicts},
            }
        out["imports"] = []
        for run, fmt, path, task, report in self.query(
            "SELECT run, format, path, task, report FROM imports ORDER BY run"
        ):
            r = json.loads(report)
            entry = {"run": run, "format": fmt, "path": path, "task": task}
            for key in ("seen", "added", "present", "duplicates", "conflicts"):
                entry[key] = r.get(key, 0)
            entry["skipped"] = len(r.get("skipped", []))
            entry["dropped"] = len(r.get("dropped", []))
            if r.get("agreement"):
                entry["agreement"] = r["agreement"]
            out["imports"].append(entry)
        return out
