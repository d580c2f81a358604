"""The trials database: one SQLite file beside the store's own (STORE/trials.sqlite).

One row per (search, architecture): what was trained (architecture, data hash, seed,
epochs), what it measured (val AUC float and int8, MACs, arena, flash, instructions,
training time) and what became of it (status, verdict). A row is written as ``running``
before its trial starts and completed when it ends, so a search killed at any point
finds on its next run which trials finished (used as they are) and which were
interrupted (trained again). Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TRIALS_FILE = "trials.sqlite"

# Status: what the trial process reported. Verdict: what the search made of it.
# A costlier trial was measured untrained, found to cost more than the model it reduces,
# and not trained (so it has costs but no AUC).
RUNNING, DONE, FAILED, COSTLIER = "running", "done", "failed", "costlier"
ACCEPTED, PRUNED, OVER_BUDGET = "accepted", "pruned", "over_budget"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS searches (
    id TEXT PRIMARY KEY,
    out TEXT NOT NULL,
    settings TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    search TEXT NOT NULL,
    arch_key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    parent TEXT,
    step TEXT NOT NULL,
    arch TEXT NOT NULL,
    data_hash TEXT NOT NULL,
    seed INTEGER NOT NULL,
    epochs INTEGER NOT NULL,
    status TEXT NOT NULL,
    verdict TEXT,
    beta REAL,
    auc_float REAL,
    auc_int8 REAL,
    macs INTEGER,
    arena INTEGER,
    flash INTEGER,
    instructions INTEGER,
    cost INTEGER,
    fits INTEGER,
    message TEXT,
    train_seconds REAL,
    seconds REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    started REAL,
    finished REAL,
    run_dir TEXT,
    PRIMARY KEY (search, arch_key)
);
"""

# What a trial measures, as returned by the trial process and stored as is.
RESULT_FIELDS = (
    "status",
    "auc_float",
    "auc_int8",
    "macs",
    "arena",
    "flash",
    "instructions",
    "fits",
    "message",
    "train_seconds",
    "seconds",
)
# The columns that must be equal whichever way (pool, Ray) the trials ran.
TABLE_FIELDS = (
    "seq",
    "arch_key",
    "parent",
    "step",
    "status",
    "verdict",
    "auc_float",
    "auc_int8",
    "macs",
    "arena",
    "flash",
    "instructions",
    "cost",
    "fits",
)


def data_hash(store: str | Path, task: str = "smile") -> str:
    """What the trials were trained and scored on: every sample's id, label and split."""
    from tinysmile.train.dataset import store_samples

    h = hashlib.sha256()
    for s in sorted(store_samples(store, None, task), key=lambda s: s.id):
        h.update(f"{s.id}:{s.label}:{s.split}\n".encode())
    return h.hexdigest()


class Trials:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # A long timeout: the search's coordinator is the only writer, but `--report` may
        # read while it commits.
        self.db = sqlite3.connect(self.path, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(_SCHEMA)
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def search_settings(self, search: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT settings FROM searches WHERE id = ?", (search,)).fetchone()
        return None if row is None else json.loads(row["settings"])

    def add_search(self, search: str, out: str, settings: dict[str, Any]) -> None:
        with self._tx():
            self.db.execute(
                "INSERT OR REPLACE INTO searches (id, out, settings, created) VALUES (?, ?, ?, ?)",
                (search, out, json.dumps(settings, sort_keys=True), time.time()),
            )

    def get(self, search: str, arch_key: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT * FROM trials WHERE search = ? AND arch_key = ?", (search, arch_key)
        ).fetchone()
        return None if row is None else dict(row)

    def start(
        self,
        search: str,
        arch_key: str,
        *,
        seq: int,
        parent: str | None,
        step: str,
        arch: dict[str, Any],
        data_hash: str,
        seed: int,
        epochs: int,
        run_dir: str,
    ) -> None:
        """Mark a trial as running: a new row, a retry of an interrupted one, or one that was
        costlier than the model it reduced, now a reduction of another."""
        with self._tx():
            self.db.execute(
                """INSERT INTO trials (search, arch_key, seq, parent, step, arch, data_hash,
                       seed, epochs, status, attempts, started, run_dir)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)
                   ON CONFLICT (search, arch_key) DO UPDATE SET
                       status = excluded.status, attempts = attempts + 1,
                       started = excluded.started, seq = excluded.seq,
                       parent = excluded.parent, step = excluded.step""",
                (
                    search,
                    arch_key,
                    seq,
                    parent,
                    step,
                    json.dumps(arch, sort_keys=True),
                    data_hash,
                    seed,
                    epochs,
                    RUNNING,
                    time.time(),
                    run_dir,
                ),
            )

    def finish(self, search: str, arch_key: str, result: dict[str, Any]) -> None:
        cols = [f for f in RESULT_FIELDS if f in result]
        sets = ", ".join(f"{c} = ?" for c in cols)
        with self._tx():
            self.db.execute(
                f"UPDATE trials SET {sets}, finished = ? WHERE search = ? AND arch_key = ?",
                (*[result[c] for c in cols], time.time(), search, arch_key),
            )

    def judge(self, search: str, arch_key: str, verdict: str, beta: float, cost: Any) -> None:
        with self._tx():
            self.db.execute(
                "UPDATE trials SET verdict = ?, beta = ?, cost = ? WHERE search = ? AND arch_key = ?",
                (verdict, beta, cost, search, arch_key),
            )

    def rows(self, search: str) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT * FROM trials WHERE search = ? ORDER BY seq", (search,))
        return [dict(r) for r in cur.fetchall()]

    @contextmanager
    def _tx(self) -> Iterator[None]:
        try:
            yield
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise
