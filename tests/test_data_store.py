"""The store: splits by hash, reopening, filters, and errors a user can act on."""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter

import pytest

from tinysmile.data.store import Sample, Store, content_hash, split_for_hash
from tinysmile.errors import TinysmileError


def test_split_by_hash_is_fixed_and_80_10_10():
    assert split_for_hash("00000000" + "f" * 56) == "train"  # bucket 0
    assert split_for_hash(f"{80:08x}" + "0" * 56) == "val"  # bucket 80
    assert split_for_hash(f"{90:08x}" + "0" * 56) == "test"  # bucket 90
    assert split_for_hash(f"{179:08x}" + "0" * 56) == "train"  # bucket 79
    counts = Counter(
        split_for_hash(hashlib.sha256(str(i).encode()).hexdigest()) for i in range(10000)
    )
    assert 7800 <= counts["train"] <= 8200 and 900 <= counts["val"] <= 1100


def test_add_reopen_filter(tmp_path):
    with Store(tmp_path / "s") as store:
        with store.transaction():
            a = store.add_image(b"AAA", suffix=".JPG", label=1, task="smile", source="t",
                                original="a", split="val", face_box=(1, 2, 3, 4))  # fmt: skip
            b = store.add_image(b"BBB", suffix=".png", label=2, task="attitude", source="t",
                                original="b", votes=["r1:positive"], agreement=None)  # fmt: skip
        assert a.added and b.added
    with Store(tmp_path / "s", create=False) as store:
        (s,) = store.samples(split="val")
        assert s == Sample(
            id=content_hash(b"AAA"),
            path=store.root / "images" / content_hash(b"AAA")[:2] / f"{content_hash(b'AAA')}.jpg",
            label=1,
            split="val",
            source="t",
            task="smile",
            original="a",
            votes=None,
            agreement=None,
            face_box=(1, 2, 3, 4),
        )
        assert s.path.read_bytes() == b"AAA"
        assert store.samples(split="train") == []
        (t,) = store.samples(task="attitude")
        assert (t.label, t.votes, t.split) == (2, ("r1:positive",), split_for_hash(t.id))
        assert store.count() == 2 and store.tasks() == ["attitude", "smile"]


def test_errors(tmp_path):
    with pytest.raises(TinysmileError, match="no dataset store here"):
        Store(tmp_path / "none", create=False)
    with Store(tmp_path / "s") as store:
        with pytest.raises(TinysmileError, match="unknown task 'frown'"):
            store.samples(task="frown")
        with pytest.raises(TinysmileError, match="unknown split 'dev'"):
            store.samples(split="dev")
        with pytest.raises(TinysmileError, match="label 2 out of range"):
            store.add_image(b"x", suffix=".png", label=2, task="smile", source="t", original="x")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "store.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(TinysmileError, match="not a usable dataset store"):
        Store(bad)
    with sqlite3.connect(tmp_path / "s" / "store.sqlite") as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    with pytest.raises(TinysmileError, match="store schema 99"):
        Store(tmp_path / "s")


def test_a_schema_1_store_is_migrated_in_place(tmp_path):
    """A schema-1 store (label NOT NULL, no ratings) opens as schema 2: its rows unchanged,
    and it takes unlabelled samples (Pi captures, images waiting for raters)."""
    con = sqlite3.connect(tmp_path / "store.sqlite")
    con.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema', '1');
        CREATE TABLE samples (id TEXT NOT NULL, task TEXT NOT NULL, file TEXT NOT NULL,
            source TEXT NOT NULL, original TEXT NOT NULL, label INTEGER NOT NULL,
            split TEXT NOT NULL, votes TEXT, agreement REAL, face_box TEXT,
            added REAL NOT NULL, PRIMARY KEY (id, task));
        CREATE TABLE duplicates (id TEXT NOT NULL, task TEXT NOT NULL, source TEXT NOT NULL,
            original TEXT NOT NULL, label INTEGER NOT NULL, conflict INTEGER NOT NULL,
            PRIMARY KEY (id, task, source, original));
        INSERT INTO samples VALUES ('ab', 'smile', 'images/ab/ab.jpg', 'folder', 'x.jpg', 1,
            'train', NULL, NULL, NULL, 5.0);
        """
    )
    con.commit()
    con.close()
    with Store(tmp_path, create=False) as s:
        assert s.query("SELECT value FROM meta WHERE key='schema'") == [("2",)]
        assert [(x.id, x.label, x.split) for x in s.samples()] == [("ab", 1, "train")]
        notnull = {r[1]: r[3] for r in s.query("PRAGMA table_info(samples)")}
        assert notnull["label"] == 0 and "rating" in notnull
        with s.transaction():
            s.add_image(
                b"not decoded here", suffix=".png", label=None, task="smile",
                source="captures", original="e1",
            )  # fmt: skip
        assert s.query("SELECT label FROM samples WHERE source='captures'") == [(None,)]
        assert s.stats()["tasks"]["smile"]["without_label"] == 1
