"""Importers on small trees built here, and SMILEsmileD on the shared dataset."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from tinysmile.cli import main
from tinysmile.data.importers import import_dataset
from tinysmile.data.store import Store, split_for_hash
from tinysmile.errors import TinysmileError

REPO = Path(__file__).resolve().parents[1]
SMILESMILED = Path(
    os.environ.get("TINYSMILE_SMILESMILED", REPO.parent / "shared" / "datasets" / "smilesmiled")
)
needs_smilesmiled = pytest.mark.skipif(
    not (SMILESMILED / "SMILEs").is_dir(), reason=f"SMILEsmileD not found at {SMILESMILED}"
)


def write_image(path: Path, seed: int, size: int = 24, ext: str | None = None) -> Path:
    """A small distinct image (distinct bytes, so distinct content hash)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (size, size), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(ext or path.suffix, image)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def write_corrupt(folder: Path) -> list[Path]:
    """An empty JPEG, a text file named .png, and a JPEG cut in half."""
    folder.mkdir(parents=True, exist_ok=True)
    empty = folder / "empty.jpg"
    empty.write_bytes(b"")
    text = folder / "text.png"
    text.write_text("this is not a picture")
    whole = write_image(folder / "whole.tmp", seed=999, size=48, ext=".jpg").read_bytes()
    (folder / "whole.tmp").unlink()
    cut = folder / "cut.jpg"
    cut.write_bytes(whole[: len(whole) // 2])
    return [empty, text, cut]


def reasons(report) -> dict[str, str]:
    return {Path(what).name: why for what, why in report.skipped}


# -- folder ---------------------------------------------------------------------------


def test_folder_import_counts_corrupt_and_idempotent(tmp_path):
    src = tmp_path / "src"
    for i in range(5):
        write_image(src / "smile" / f"s{i}.png", seed=i)
    for i in range(7):
        write_image(src / "no_smile" / "deeper" / f"n{i}.jpg", seed=100 + i)
    write_corrupt(src / "no_smile")
    (src / "smile" / "notes.txt").write_text("hello")
    # the same picture in both classes: a duplicate with a conflicting label
    (src / "no_smile" / "copy_of_s0.png").write_bytes((src / "smile" / "s0.png").read_bytes())

    store = Store(tmp_path / "store")
    r = import_dataset("folder", src, store)
    assert (r.seen, r.added, r.duplicates, r.conflicts) == (16, 12, 1, 1)
    why = reasons(r)
    assert len(r.skipped) == 4
    assert why["empty.jpg"] == "empty file"
    assert why["text.png"] == "not a readable image"
    assert why["cut.jpg"].startswith("truncated JPEG")
    assert why["notes.txt"].startswith("not an image file")
    samples = store.samples()
    # no_smile/ is listed first, so its copy of s0 is the one stored (first one wins)
    assert Counter(s.label for s in samples) == {1: 4, 0: 8}
    assert all(s.path.is_file() and s.path.is_relative_to(store.root) for s in samples)
    assert [s.id for s in samples] == sorted(s.id for s in samples)
    assert all(s.split == split_for_hash(s.id) for s in samples)
    assert len(list((store.root / "images").rglob("*.*"))) == 12

    again = import_dataset("folder", src, store)
    assert (again.added, again.present, again.duplicates) == (0, 12, 1)
    assert store.count() == 12
    stats = store.stats()
    assert stats["tasks"]["smile"]["duplicates"] == {"files": 1, "conflicting_labels": 1}
    assert (
        sum(stats["tasks"]["smile"]["splits"][s]["total"] for s in ("train", "val", "test")) == 12
    )
    store.close()


def test_folder_class_names(tmp_path):
    src = tmp_path / "src"
    write_image(src / "happy" / "a.png", seed=1)
    write_image(src / "meh" / "b.png", seed=2)
    write_image(src / "grumpy" / "c.png", seed=3)
    with Store(tmp_path / "store") as store:
        with pytest.raises(TinysmileError, match="--classes"):
            import_dataset("folder", src, store)
        r = import_dataset(
            "folder", src, store, task="attitude", classes="happy=positive,meh=neutral,grumpy=0"
        )
        assert r.added == 3
        labels = {Path(s.original).parent.name: s.label for s in store.samples(task="attitude")}
        assert labels == {"happy": 2, "meh": 1, "grumpy": 0}
        assert store.samples(task="smile") == []


# -- GENKI-4K ---------------------------------------------------------------------------


def test_genki4k_files_and_labels_layout(tmp_path):
    src = tmp_path / "genki4k"
    labels = ["1 -0.02 0.05 -0.03", "0 0.1 0.2 0.3", "1 0 0 0", "x 0 0 0", "0 0 0 0", "1 0 0 0"]
    (src / "files").mkdir(parents=True)
    (src / "labels.txt").write_text("\n".join(labels) + "\n")
    for i in (1, 2, 3, 4, 5):  # file0006 is listed but missing
        write_image(src / "files" / f"file{i:04d}.jpg", seed=i)
    (src / "files" / "file0005.jpg").write_bytes(b"\xff\xd8garbage")  # corrupt
    write_image(src / "files" / "stray.jpg", seed=77)  # not in labels.txt
    with Store(tmp_path / "store") as store:
        r = import_dataset("genki4k", src, store)
        why = reasons(r)
        # lines 1-3 are good; line 4's label is bad; file0005 is corrupt; 0006 missing
        assert (r.seen, r.added) == (4, 3)
        assert len(r.skipped) == 4
        assert why["file0006.jpg"] == "listed but missing"
        assert why["stray.jpg"].startswith("no line")
        assert "bad label line" in why["labels.txt:4"]
        assert why["file0005.jpg"].startswith("truncated JPEG")
        got = {Path(s.original).name: s.label for s in store.samples()}
        assert got == {"file0001.jpg": 1, "file0002.jpg": 0, "file0003.jpg": 1}


def test_genki4k_r2009a_layout(tmp_path):
    root = tmp_path / "GENKI-R2009a"
    subset = root / "Subsets" / "GENKI-4K"
    subset.mkdir(parents=True)
    names = ["file0010.jpg", "file0020.jpg", "file0030.jpg", "file0040.jpg"]
    for i, n in enumerate(names):
        write_image(root / "files" / n, seed=10 + i)
    (subset / "GENKI-4K_Images.txt").write_text("\n".join(names) + "\n")
    (subset / "GENKI-4K_Labels.txt").write_text("1 0 0 0\n0 0 0 0\n0 0 0 0\n1 0 0 0\n")
    for path in (root, subset):  # either folder may be named
        with Store(tmp_path / f"store_{path.name}") as store:
            r = import_dataset("genki4k", path, store)
            assert (r.added, len(r.skipped)) == (4, 0)
            assert sorted(s.label for s in store.samples()) == [0, 0, 1, 1]
    (subset / "GENKI-4K_Labels.txt").write_text("1 0 0 0\n")
    with Store(tmp_path / "store_bad") as store:
        with pytest.raises(TinysmileError, match="4 image names but 1 label lines"):
            import_dataset("genki4k", root, store)
        with pytest.raises(TinysmileError, match="only say smile"):
            import_dataset("genki4k", root, store, task="attitude")


# -- FER2013 ----------------------------------------------------------------------------


def fer_rows(tmp_path: Path) -> Path:
    def pix(seed: int) -> str:
        return " ".join(str(v) for v in np.random.default_rng(seed).integers(0, 256, 48 * 48))

    same = pix(3)
    rows = [
        ("3", pix(1), "Training"),  # happy
        ("6", pix(2), "Training"),  # neutral
        ("0", same, "PublicTest"),  # angry
        ("4", pix(4), "PrivateTest"),  # sad
        ("3", pix(5), "PrivateTest"),  # happy
        ("5", same, "Training"),  # surprise, same pixels as the angry row: duplicate
        ("9", pix(6), "Training"),  # no such emotion
        ("2", "1 2 3", "Training"),  # too few pixels
        ("2", pix(7).replace("1", "x", 1), "Training"),  # not integers
        ("1", pix(8), "Validation"),  # unknown usage
    ]
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n" + "".join(f"{e},{p},{u}\n" for e, p, u in rows))
    return path


def test_fer2013_smile_and_attitude(tmp_path):
    csv_path = fer_rows(tmp_path)
    with Store(tmp_path / "store") as store:
        r = import_dataset("fer2013", csv_path, store)
        assert (r.seen, r.added, r.duplicates, r.conflicts) == (6, 5, 1, 0)
        assert [why for _, why in r.skipped] == [
            "emotion 9 outside 0..6",
            "3 pixel values, expected 2304",
            "pixel values are not integers",
            "unknown Usage 'Validation'",
        ]
        smile = store.samples(task="smile")
        by_row = {s.original.rsplit(":", 1)[1]: s for s in smile}
        assert {k: v.label for k, v in by_row.items()} == {"2": 1, "3": 0, "4": 0, "5": 0, "6": 1}
        assert {k: v.split for k, v in by_row.items()} == {
            "2": "train",
            "3": "train",
            "4": "val",
            "5": "test",
            "6": "test",
        }
        image = cv2.imread(str(by_row["2"].path), cv2.IMREAD_UNCHANGED)
        assert image.shape == (48, 48) and image.dtype == np.uint8
        expected = np.array(fer_pixels(csv_path, 2).split(), dtype=np.uint8).reshape(48, 48)
        np.testing.assert_array_equal(image, expected)

        r = import_dataset("fer2013", csv_path, store, task="attitude")
        assert r.added == 5
        att = {s.original.rsplit(":", 1)[1]: s.label for s in store.samples(task="attitude")}
        assert att == {"2": 2, "3": 1, "4": 0, "5": 0, "6": 2}
        # the same pixels are one stored file for both tasks
        assert len(list((store.root / "images").rglob("*.png"))) == 5
        assert import_dataset("fer2013", csv_path, store).added == 0

        r = import_dataset("fer2013", csv_path, Store(tmp_path / "hashsplit"), split_by="hash")
        assert r.added == 6  # 'Validation' usage no longer matters


def test_fer2013_in_the_kaggle_folder_layout(tmp_path):
    """train/ and validation/ of emotion folders (the shared copy's layout): the folder is
    the split, the emotion folder the label; stray folders and files are listed, not taken."""
    rng = np.random.default_rng(0)
    want = {}
    for split, emotions in (
        ("train", ("happy", "angry", "neutral")),
        ("validation", ("happy", "sad")),
    ):
        for i, emo in enumerate(emotions):
            d = tmp_path / "fer" / split / emo
            d.mkdir(parents=True)
            f = d / f"{split}_{i}.jpg"
            cv2.imwrite(str(f), rng.integers(0, 255, (48, 48), dtype=np.uint8))
            want[str(f)] = (emo, {"train": "train", "validation": "val"}[split])
    (tmp_path / "fer" / "train" / "happy" / "notes.txt").write_text("x")
    (tmp_path / "fer" / "train" / "contempt").mkdir()
    (tmp_path / "fer" / "extra").mkdir()
    with Store(tmp_path / "store") as store:
        r = import_dataset("fer2013", tmp_path / "fer", store)
        assert r.added == 5 and len(r.skipped) == 3
        got = {s.original: (s.label, s.split) for s in store.samples(task="smile")}
        assert got == {f: (int(e == "happy"), sp) for f, (e, sp) in want.items()}
        import_dataset("fer2013", tmp_path / "fer", store, task="attitude")
        att = {s.original: s.label for s in store.samples(task="attitude")}
        codes = {"happy": 2, "neutral": 1, "angry": 0, "sad": 0}
        assert att == {f: codes[e] for f, (e, _) in want.items()}
    with Store(tmp_path / "hash") as store:
        import_dataset("fer2013", tmp_path / "fer", store, split_by="hash")
        from tinysmile.data.store import split_for_hash

        assert all(s.split == split_for_hash(s.id) for s in store.samples(task="smile"))


def fer_pixels(csv_path: Path, lineno: int) -> str:
    return csv_path.read_text().splitlines()[lineno - 1].split(",")[1]


# -- CelebA -----------------------------------------------------------------------------


def test_celeba(tmp_path):
    root = tmp_path / "celeba"
    names = [f"{i:06d}.jpg" for i in range(1, 8)]
    attrs = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Smiling", "Young"]
    smiling = ["1", "-1", "1", "-1", "1", "0", "1"]  # 000006 has a bad value
    lines = [str(len(names)), " ".join(attrs)]
    lines += [f"{n}  -1  1 {s:>2}  1" for n, s in zip(names, smiling)]
    lines.append("000099.jpg -1 1")  # wrong column count
    (root / "img_align_celeba").mkdir(parents=True)
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    parts = {1: 0, 2: 0, 3: 1, 4: 2, 5: 2, 6: 0}  # 000007 not in the partition file
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{i:06d}.jpg {p}\n" for i, p in parts.items())
    )
    for i, n in enumerate(names[:-2]):  # 000007 exists, 000006 is written corrupt below
        write_image(root / "img_align_celeba" / n, seed=i)
    write_image(root / "img_align_celeba" / names[-1], seed=50)
    (root / "img_align_celeba" / "000003.jpg").write_bytes(b"")
    with Store(tmp_path / "store") as store:
        r = import_dataset("celeba", root, store)
        why = reasons(r)
        assert (r.seen, r.added) == (5, 4)
        assert len(r.skipped) == 4
        assert "Smiling value '0'" in why["list_attr_celeba.txt:8"]
        assert "attributes, expected 4" in why["list_attr_celeba.txt:10"]
        assert why["000007.jpg"] == "not in list_eval_partition.txt"
        assert why["000003.jpg"] == "empty file"
        got = {Path(s.original).name: (s.label, s.split) for s in store.samples()}
        assert got == {
            "000001.jpg": (1, "train"),
            "000002.jpg": (0, "train"),
            "000004.jpg": (0, "test"),
            "000005.jpg": (1, "test"),
        }


# -- SMILEsmileD (the real dataset) -----------------------------------------------------


@needs_smilesmiled
def test_smilesmiled_full_listing_counts():
    from tinysmile.data.importers import list_smilesmiled

    listing = list_smilesmiled(SMILESMILED, "smile")
    assert Counter(it.label for it in listing.items) == {1: 2997, 0: 7560}
    assert listing.skipped == []


@needs_smilesmiled
def test_smilesmiled_import_subset_balance_and_cli(tmp_path, capsys):
    store_dir = tmp_path / "store"
    rc = main(
        ["data", "import", "smilesmiled", str(SMILESMILED), "--store", str(store_dir)]
        + ["--limit", "400", "--json"]
    )
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["seen"], report["added"], report["skipped"]) == (400, 400, [])
    with Store(store_dir) as store:
        labels = Counter(s.label for s in store.samples())
        splits = Counter(s.split for s in store.samples())
    assert labels[0] + labels[1] == 400
    # the subset keeps SMILEsmileD's balance (28.4% smiles) within sampling noise
    assert 0.20 <= labels[1] / 400 <= 0.37
    assert 280 <= splits["train"] <= 360 and splits["val"] + splits["test"] == 400 - splits["train"]

    assert main(["data", "stats", "--store", str(store_dir), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    t = stats["tasks"]["smile"]
    assert t["sources"]["smilesmiled"] == {"no_smile": labels[0], "smile": labels[1], "total": 400}
    assert t["splits"]["train"]["total"] == splits["train"]
    assert main(["data", "stats", "--store", str(store_dir)]) == 0
    assert "source smilesmiled" in capsys.readouterr().out
    # a second run is a no-op
    assert main(["data", "import", "smilesmiled", str(SMILESMILED), "--store", str(store_dir),
                 "--limit", "400", "--json"]) == 0  # fmt: skip
    again = json.loads(capsys.readouterr().out)
    assert (again["added"], again["present"]) == (0, 400)

    sheet = tmp_path / "sheet.png"
    argv = ["data", "preview", "--store", str(store_dir), "--out", str(sheet), "--count", "3"]
    assert main([*argv, "--augment", "--variants", "4", "--split", "val"]) == 0
    assert "3 rows x 5 columns" in capsys.readouterr().out
    assert cv2.imread(str(sheet), cv2.IMREAD_UNCHANGED).shape == (3 * 78 + 2, 5 * 66 + 2)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "import", "genki4k", str(tmp_path), "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a GENKI-4K tree" in err and err.count("\n") == 1
    assert main(["data", "stats", "--store", str(tmp_path / "nothing")]) == 2
    assert "no dataset store here" in capsys.readouterr().err
