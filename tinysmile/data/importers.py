"""Importers: turn a dataset on disk into store rows.

Each format has a lister that reads only labels and file names and returns `Item`s;
`import_dataset` then reads, validates, deduplicates and stores them, so every format
gets the same handling of corrupt files, duplicates, `limit` and progress.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tinysmile.data.listing import Item, Listing
from tinysmile.data.store import TASK_LABELS, ImportReport, Store, check_task
from tinysmile.data.votes import list_votes
from tinysmile.errors import TinysmileError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".pbm", ".tif", ".tiff", ".webp")


# -- helpers ------------------------------------------------------------------------


def _is_image_name(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_SUFFIXES


def _walk_files(root: Path) -> list[Path]:
    """Regular files under root, sorted, hidden files and folders left out."""
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).parts
        if any(part.startswith(".") for part in rel):
            continue
        if p.is_file():
            out.append(p)
    return out


def _files_as_items(root: Path, label: int, listing: Listing, split: str | None = None) -> None:
    for p in _walk_files(root):
        if _is_image_name(p):
            listing.items.append(
                Item(original=str(p), label=label, suffix=p.suffix, path=p, split=split)
            )
        else:
            listing.skipped.append((str(p), "not an image file (unknown extension)"))


def _need_smile(fmt: str, task: str) -> None:
    if task != "smile":
        raise TinysmileError(f"{fmt}: labels only say smile / no smile; use --task smile")


def _read_text_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise TinysmileError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _validate(data: bytes) -> str | None:
    """Why these bytes are not a usable image, or None when they are."""
    import cv2

    if not data:
        return "empty file"
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-1024:]:
        # libjpeg pads a truncated JPEG with grey and only warns; a half-grey face
        # would be a silently wrong sample.
        return "truncated JPEG (no end-of-image marker)"
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_ANYCOLOR)
    if image is None or image.size == 0:
        return "not a readable image"
    return None


# -- folder-per-class and SMILEsmileD ------------------------------------------------

_CLASS_ALIASES: dict[str, dict[str, int]] = {
    "smile": {
        **dict.fromkeys(["smile", "smiles", "smiling", "positive", "positives", "yes", "1"], 1),
        **dict.fromkeys(
            [
                "no_smile",
                "nosmile",
                "no-smile",
                "non_smile",
                "nonsmile",
                "not_smiling",
                "not-smiling",
                "notsmiling",
                "negative",
                "negatives",
                "no",
                "0",
            ],
            0,
        ),
    },
    "attitude": {
        **dict.fromkeys(["negative", "negatives", "neg", "0"], 0),
        **dict.fromkeys(["neutral", "neutrals", "neu", "1"], 1),
        **dict.fromkeys(["positive", "positives", "pos", "2"], 2),
    },
}


def _parse_classes(spec: str | dict[str, int] | None, task: str) -> dict[str, int] | None:
    if spec is None or isinstance(spec, dict):
        return spec
    out: dict[str, int] = {}
    names = TASK_LABELS[task]
    for part in spec.split(","):
        if not part.strip():
            continue
        folder, sep, label = part.partition("=")
        if not sep:
            raise TinysmileError(f"--classes: expected FOLDER=LABEL, got {part!r}")
        label = label.strip()
        if label in names:
            out[folder.strip()] = names.index(label)
        elif label.isdigit() and int(label) < len(names):
            out[folder.strip()] = int(label)
        else:
            raise TinysmileError(
                f"--classes: label {label!r} is not one of {', '.join(names)} (or 0..{len(names) - 1})"
            )
    return out


def list_folder(path: Path, task: str, classes: str | dict[str, int] | None = None) -> Listing:
    """One sub-folder per class; class names by alias (smile, no_smile, ...) or `classes`."""
    if not path.is_dir():
        raise TinysmileError(f"{path}: not a folder")
    mapping = _parse_classes(classes, task)
    listing = Listing()
    subdirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise TinysmileError(f"{path}: no class sub-folders")
    for d in subdirs:
        if mapping is not None:
            if d.name not in mapping:
                listing.skipped.append((str(d), "folder not named in --classes"))
                continue
            label = mapping[d.name]
        else:
            label = _CLASS_ALIASES[task].get(d.name.lower())  # type: ignore[assignment]
            if label is None:
                raise TinysmileError(
                    f"{d}: folder name is not a {task} class "
                    f"({', '.join(TASK_LABELS[task])}); say which with --classes NAME=LABEL,..."
                )
        _files_as_items(d, label, listing)
    for p in sorted(path.iterdir()):
        if p.is_file() and not p.name.startswith("."):
            listing.skipped.append((str(p), "file outside the class folders"))
    return listing


def list_smilesmiled(path: Path, task: str) -> Listing:
    """SMILEsmileD: SMILEs/positives/positives7/*.jpg and SMILEs/negatives/negatives7/*.jpg."""
    _need_smile("smilesmiled", task)
    root = path / "SMILEs" if (path / "SMILEs").is_dir() else path
    pos, neg = root / "positives", root / "negatives"
    if not (pos.is_dir() and neg.is_dir()):
        raise TinysmileError(
            f"{path}: not a SMILEsmileD tree (expected SMILEs/positives and SMILEs/negatives)"
        )
    listing = Listing()
    _files_as_items(neg, 0, listing)
    _files_as_items(pos, 1, listing)
    return listing


# -- GENKI-4K --------------------------------------------------------------------------


def _genki_label(line: str) -> int:
    tok = line.split()
    value = float(tok[0])
    if value not in (0.0, 1.0):
        raise ValueError(f"smile label {tok[0]!r} is not 0 or 1")
    return int(value)


def list_genki4k(path: Path, task: str) -> Listing:
    """GENKI-4K, either `files/` + `labels.txt`, or GENKI-R2009a's `Subsets/GENKI-4K`.

    labels.txt / GENKI-4K_Labels.txt: one line per image, "smile yaw pitch roll".
    In the first layout line i names files/file%04d.jpg; in the R2009a layout
    GENKI-4K_Images.txt names the files, which live in the R2009a root's files/.
    """
    _need_smile("genki4k", task)
    listing = Listing()
    subset = None
    for cand in (path / "Subsets" / "GENKI-4K", path):
        if (cand / "GENKI-4K_Labels.txt").is_file():
            subset = cand
            break
    if subset is not None:
        labels_file = subset / "GENKI-4K_Labels.txt"
        images_file = subset / "GENKI-4K_Images.txt"
        if not images_file.is_file():
            raise TinysmileError(f"{subset}: GENKI-4K_Labels.txt without GENKI-4K_Images.txt")
        files_dir = next(
            (
                d
                for d in (subset / "files", subset.parent.parent / "files", path / "files")
                if d.is_dir()
            ),
            None,
        )
        if files_dir is None:
            raise TinysmileError(f"{path}: GENKI-R2009a layout without a files/ folder")
        labels = _read_text_lines(labels_file)
        names = [n.strip() for n in _read_text_lines(images_file) if n.strip()]
        labels = [ln for ln in labels if ln.strip()]
        if len(names) != len(labels):
            raise TinysmileError(
                f"{subset}: {len(names)} image names but {len(labels)} label lines"
            )
        pairs = [
            (files_dir / n, ln, f"{labels_file}:{i + 1}")
            for i, (n, ln) in enumerate(zip(names, labels))
        ]
    elif (path / "labels.txt").is_file() and (path / "files").is_dir():
        labels_file = path / "labels.txt"
        labels = [ln for ln in _read_text_lines(labels_file) if ln.strip()]
        pairs = [
            (path / "files" / f"file{i + 1:04d}.jpg", ln, f"{labels_file}:{i + 1}")
            for i, ln in enumerate(labels)
        ]
        named = {p for p, _, _ in pairs}
        for p in _walk_files(path / "files"):
            if p not in named:
                listing.skipped.append((str(p), "no line for it in labels.txt"))
    else:
        raise TinysmileError(
            f"{path}: not a GENKI-4K tree (expected files/ + labels.txt, "
            "or Subsets/GENKI-4K/GENKI-4K_Labels.txt)"
        )
    for image, line, where in pairs:
        try:
            label = _genki_label(line)
        except (ValueError, IndexError) as exc:
            listing.skipped.append((where, f"bad label line ({exc})"))
            continue
        if not image.is_file():
            listing.skipped.append((str(image), "listed but missing"))
            continue
        listing.items.append(
            Item(original=str(image), label=label, suffix=image.suffix, path=image)
        )
    return listing


# -- FER2013 ---------------------------------------------------------------------------

FER_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
_FER_HAPPY, _FER_NEUTRAL = 3, 6
_FER_USAGE = {"training": "train", "publictest": "val", "privatetest": "test"}
FER_SIDE = 48


def fer_label(emotion: int, task: str) -> int:
    if task == "smile":
        return int(emotion == _FER_HAPPY)
    # attitude: 0 negative, 1 neutral, 2 positive
    if emotion == _FER_HAPPY:
        return 2
    if emotion == _FER_NEUTRAL:
        return 1
    return 0


def _fer_png(pixels: str, where: str) -> Callable[[], bytes]:
    def load() -> bytes:
        import cv2

        values = np.array(pixels.split(), dtype=np.int64)
        image = values.astype(np.uint8).reshape(FER_SIDE, FER_SIDE)
        # PNG from OpenCV is byte-for-byte deterministic, so re-imports hash the same.
        ok, buf = cv2.imencode(".png", image)
        if not ok:
            raise TinysmileError(f"{where}: PNG encoding failed")
        return buf.tobytes()

    return load


def _check_fer_pixels(pixels: str) -> str | None:
    parts = pixels.split()
    if len(parts) != FER_SIDE * FER_SIDE:
        return f"{len(parts)} pixel values, expected {FER_SIDE * FER_SIDE}"
    try:
        values = [int(v) for v in parts]
    except ValueError:
        return "pixel values are not integers"
    if min(values) < 0 or max(values) > 255:
        return "pixel values outside 0..255"
    return None


# The Kaggle folder layout's split folders -> the store's splits (the CSV's Usage, by name).
_FER_FOLDERS = {
    "train": "train",
    "training": "train",
    "validation": "val",
    "val": "val",
    "publictest": "val",
    "test": "test",
    "privatetest": "test",
}


def _list_fer2013_folders(path: Path, task: str, split_by: str) -> Listing:
    """FER2013 in the Kaggle folder layout: SPLIT/EMOTION/*.jpg (train, validation or
    test; the seven emotion names), the split folder giving the store's split."""
    listing = Listing()
    for split_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        split = _FER_FOLDERS.get(split_dir.name.lower())
        if split is None:
            listing.skipped.append((str(split_dir), "not a split folder (train, validation, test)"))
            continue
        for emo_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            name = emo_dir.name.lower()
            if name not in FER_EMOTIONS:
                listing.skipped.append((str(emo_dir), f"unknown emotion {emo_dir.name!r}"))
                continue
            label = fer_label(FER_EMOTIONS.index(name), task)
            for f in _walk_files(emo_dir):
                if not _is_image_name(f):
                    listing.skipped.append((str(f), "not an image file (unknown extension)"))
                    continue
                listing.items.append(
                    Item(
                        original=str(f),
                        label=label,
                        suffix=f.suffix.lower(),
                        path=f,
                        split=split if split_by == "source" else None,
                    )
                )
    return listing


def list_fer2013(path: Path, task: str, split_by: str = "source") -> Listing:
    """FER2013 as the CSV (emotion, pixels, Usage: 48x48 grey images as pixel strings), or
    in the Kaggle folder layout (train/, validation/, test/ of emotion folders)."""
    kaggle = path.is_dir() and any((path / d).is_dir() for d in _FER_FOLDERS)
    if kaggle and not (path / "fer2013.csv").is_file():
        return _list_fer2013_folders(path, task, split_by)
    csv_path = path / "fer2013.csv" if path.is_dir() else path
    if not csv_path.is_file():
        raise TinysmileError(
            f"{path}: no FER2013 CSV (a .csv file or a folder with fer2013.csv) and no "
            "train/ or validation/ folder of emotion folders (the Kaggle layout)"
        )
    listing = Listing()
    try:
        with csv_path.open(newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            if "emotion" not in header or "pixels" not in header:
                raise TinysmileError(f"{csv_path}: header must name emotion and pixels columns")
            ie, ip = header.index("emotion"), header.index("pixels")
            iu = header.index("usage") if "usage" in header else None
            for lineno, row in enumerate(reader, start=2):
                where = f"{csv_path}:{lineno}"
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) < len(header):
                    listing.skipped.append((where, f"{len(row)} columns, expected {len(header)}"))
                    continue
                try:
                    emotion = int(row[ie])
                except ValueError:
                    listing.skipped.append((where, f"emotion {row[ie]!r} is not an integer"))
                    continue
                if not 0 <= emotion < len(FER_EMOTIONS):
                    listing.skipped.append((where, f"emotion {emotion} outside 0..6"))
                    continue
                bad = _check_fer_pixels(row[ip])
                if bad:
                    listing.skipped.append((where, bad))
                    continue
                split = None
                if iu is not None and split_by == "source":
                    usage = row[iu].strip().lower()
                    split = _FER_USAGE.get(usage)
                    if split is None:
                        listing.skipped.append((where, f"unknown Usage {row[iu]!r}"))
                        continue
                listing.items.append(
                    Item(
                        original=where,
                        label=fer_label(emotion, task),
                        suffix=".png",
                        load=_fer_png(row[ip], where),
                        split=split,
                    )
                )
    except OSError as exc:
        raise TinysmileError(f"{csv_path}: cannot read ({exc.strerror or exc})") from None
    except csv.Error as exc:
        raise TinysmileError(f"{csv_path}: not a readable CSV ({exc})") from None
    return listing


# -- CelebA ----------------------------------------------------------------------------

_CELEBA_PARTITION = {"0": "train", "1": "val", "2": "test"}


def _first_file(*cands: Path) -> Path | None:
    return next((c for c in cands if c.is_file()), None)


def list_celeba(path: Path, task: str, split_by: str = "source") -> Listing:
    """CelebA: list_attr_celeba.txt (attribute Smiling, +1/-1), list_eval_partition.txt
    (0/1/2 -> train/val/test), images under img_align_celeba/."""
    _need_smile("celeba", task)
    attr = _first_file(path / "list_attr_celeba.txt", path / "Anno" / "list_attr_celeba.txt")
    if attr is None:
        raise TinysmileError(f"{path}: no list_attr_celeba.txt (nor Anno/list_attr_celeba.txt)")
    part = _first_file(path / "list_eval_partition.txt", path / "Eval" / "list_eval_partition.txt")
    img_dir = next(
        (
            d
            for d in (
                path / "img_align_celeba" / "img_align_celeba",
                path / "img_align_celeba",
                path / "Img" / "img_align_celeba",
            )
            if d.is_dir()
        ),
        None,
    )
    if img_dir is None:
        raise TinysmileError(f"{path}: no img_align_celeba/ folder")
    listing = Listing()
    splits: dict[str, str] = {}
    if part is not None and split_by == "source":
        for i, line in enumerate(_read_text_lines(part), start=1):
            tok = line.split()
            if not tok:
                continue
            if len(tok) != 2 or tok[1] not in _CELEBA_PARTITION:
                listing.skipped.append((f"{part}:{i}", f"bad partition line {line!r}"))
                continue
            splits[tok[0]] = _CELEBA_PARTITION[tok[1]]
    lines = _read_text_lines(attr)
    if len(lines) < 2:
        raise TinysmileError(f"{attr}: too short for a CelebA attribute file")
    names = lines[1].split()
    if "Smiling" not in names:
        raise TinysmileError(f"{attr}: no Smiling attribute in its header line")
    col = names.index("Smiling") + 1  # +1: each row starts with the file name
    for i, line in enumerate(lines[2:], start=3):
        tok = line.split()
        if not tok:
            continue
        where = f"{attr}:{i}"
        if len(tok) != len(names) + 1:
            listing.skipped.append((where, f"{len(tok) - 1} attributes, expected {len(names)}"))
            continue
        if tok[col] not in ("1", "-1"):
            listing.skipped.append((where, f"Smiling value {tok[col]!r} is not 1 or -1"))
            continue
        image = img_dir / tok[0]
        if not image.is_file():
            listing.skipped.append((str(image), "listed but missing"))
            continue
        split = None
        if part is not None and split_by == "source":
            split = splits.get(tok[0])
            if split is None:
                listing.skipped.append((str(image), "not in list_eval_partition.txt"))
                continue
        listing.items.append(
            Item(
                original=str(image),
                label=1 if tok[col] == "1" else 0,
                suffix=image.suffix,
                path=image,
                split=split,
            )
        )
    return listing


# -- production captures (tinysmile pi run --log) ------------------------------------


def list_captures(path: Path, task: str) -> Listing:
    """Entries of a capture log: each one's crop (the pixels the model saw, framed like the
    training data) as an unlabelled sample, its entry folder as the original."""
    from tinysmile.pi.capturelog import CROP_FILE, entry_folders, read_entry

    if not path.is_dir():
        raise TinysmileError(f"{path}: not a capture log folder")
    listing = Listing()
    for entry in entry_folders(path):
        try:
            read_entry(entry)
        except TinysmileError as exc:
            listing.skipped.append((str(entry), str(exc).split(": ", 1)[-1]))
            continue
        crop = entry / CROP_FILE
        if not crop.is_file():
            listing.skipped.append((str(entry), f"no {CROP_FILE}"))
            continue
        listing.items.append(Item(original=str(entry), label=None, suffix=".png", path=crop))
    return listing


# -- unlabelled images ---------------------------------------------------------------


def list_unlabelled(path: Path, task: str) -> Listing:
    """Every image under a folder, stored without a label: raters label them later."""
    if not path.is_dir():
        raise TinysmileError(f"{path}: not a folder")
    listing = Listing()
    for p in _walk_files(path):
        if _is_image_name(p):
            listing.items.append(Item(original=str(p), label=None, suffix=p.suffix, path=p))
        else:
            listing.skipped.append((str(p), "not an image file (unknown extension)"))
    return listing


# -- registry and the import loop ----------------------------------------------------


def _list_votes(path: Path, task: str, resolve: str = "majority", **options: Any) -> Listing:
    return list_votes(path, task, policy=resolve, **options)


FORMATS: dict[str, Callable[..., Listing]] = {
    "folder": list_folder,
    "smilesmiled": list_smilesmiled,
    "genki4k": list_genki4k,
    "fer2013": list_fer2013,
    "celeba": list_celeba,
    "votes": _list_votes,
    "captures": list_captures,
    "unlabelled": list_unlabelled,
}
# Options each lister accepts beyond (path, task).
FORMAT_OPTIONS: dict[str, tuple[str, ...]] = {
    "folder": ("classes",),
    "smilesmiled": (),
    "genki4k": (),
    "fer2013": ("split_by",),
    "celeba": ("split_by",),
    "votes": ("resolve", "min_votes", "images", "agreement_csv"),
    "captures": (),
    "unlabelled": (),
}


def _subset(items: list[Item], limit: int) -> list[Item]:
    """A fixed pseudo-random subset: the `limit` items whose names hash lowest.

    Chosen by name, not content, so no file is read for the ones left out, and a
    larger limit is a superset of a smaller one.
    """

    def key(it: Item) -> str:
        return hashlib.sha1(it.original.encode()).hexdigest()

    return sorted(sorted(items, key=key)[:limit], key=lambda it: it.original)


def _progress(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not enabled,
    )


def _face_box(data: bytes) -> tuple[int, int, int, int] | None:
    from tinysmile.data.preprocess import PreprocessSpec, decode_image, detect_faces, to_gray

    faces = detect_faces(PreprocessSpec(face_crop="haar"), to_gray(decode_image(data)))
    return faces[0] if faces else None


def import_dataset(
    fmt: str,
    path: str | Path,
    store: Store,
    *,
    task: str = "smile",
    limit: int | None = None,
    progress: bool = False,
    detect_faces: bool = False,
    **options: Any,
) -> ImportReport:
    """Import a dataset into `store`; re-running it adds nothing.

    `limit` imports a fixed subset of that many items; `detect_faces` stores the
    largest Haar face box of each image. Format options: see FORMAT_OPTIONS.
    """
    import cv2

    check_task(task)
    lister = FORMATS.get(fmt)
    if lister is None:
        raise TinysmileError(f"unknown dataset format {fmt!r}; choose one of {', '.join(FORMATS)}")
    allowed = FORMAT_OPTIONS[fmt]
    unknown = sorted(k for k, v in options.items() if k not in allowed and v is not None)
    if unknown:
        raise TinysmileError(f"{fmt}: option(s) {', '.join(unknown)} do not apply to this format")
    options = {k: v for k, v in options.items() if v is not None}
    if "split_by" in options and options["split_by"] not in ("source", "hash"):
        raise TinysmileError(f"--split-by must be 'source' or 'hash', not {options['split_by']!r}")
    src = Path(path)
    if not src.exists():
        raise TinysmileError(f"{src}: no such file or folder")
    listing = lister(src.resolve(), task, **options)
    items = listing.items
    if limit is not None:
        if limit < 0:
            raise TinysmileError(f"--limit must be >= 0, got {limit}")
        items = _subset(items, limit)
    report = ImportReport(format=fmt, path=str(src.resolve()), task=task)
    report.skipped.extend(listing.skipped)
    report.dropped.extend(listing.dropped)
    report.agreement = listing.agreement
    # Corrupt JPEGs make libjpeg print warnings; they are reported as skipped instead.
    old_level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        with _progress(progress) as bar, store.transaction():
            job = bar.add_task(f"import {fmt}", total=len(items))
            for item in items:
                bar.advance(job)
                report.seen += 1
                try:
                    data = item.read()
                except OSError as exc:
                    report.skipped.append((item.original, f"cannot read ({exc.strerror or exc})"))
                    continue
                why = _validate(data)
                if why is not None:
                    report.skipped.append((item.original, why))
                    continue
                result = store.add_image(
                    data,
                    suffix=item.suffix,
                    label=item.label,
                    task=task,
                    source=fmt,
                    original=item.original,
                    split=item.split,
                    votes=item.votes,
                    agreement=item.agreement,
                    face_box=_face_box(data) if detect_faces else None,
                )
                if result.added:
                    report.added += 1
                elif result.duplicate:
                    report.duplicates += 1
                    report.conflicts += int(result.conflict)
                else:
                    report.present += 1
    finally:
        cv2.utils.logging.setLogLevel(old_level)
    store.record_import(report)
    return report


__all__ = ["FORMATS", "Item", "Listing", "import_dataset"]
