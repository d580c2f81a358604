"""Samples from a store (or a class-per-folder tree) as preprocessed uint8 arrays.

No TensorFlow here: `tinysmile evaluate` uses this too. Every image goes through the
data package's `load_image` + `preprocess`, the same call the serving side makes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinysmile.data.preprocess import PreprocessSpec, load_image, preprocess
from tinysmile.errors import TinysmileError


@dataclass
class Arrays:
    pixels: np.ndarray  # uint8 (N, H, W, 1)
    labels: np.ndarray  # int64 (N,)
    names: list[str]  # sample id or file path, for reports
    # With a detector: whether it found a face in each image (else the centre square).
    found: np.ndarray | None = None


def _pixels(
    spec: PreprocessSpec, path: Any, detector: Any, source: str | None = None
) -> tuple[np.ndarray, bool]:
    """One image as the model's input: the spec's own preprocessing, or with a detector
    (tinysmile.pi.detect) the face it finds in the whole image, framed by the spec's rule.
    A sample of a source that ships face crops (CROP_SOURCES) is taken as it is by a spec
    that finds faces: the store mixes crops with photos, and only the photos need one."""
    from tinysmile.data.preprocess import CROP_SOURCES

    image = load_image(path)
    if detector is None:
        if source in CROP_SOURCES and spec.face_crop != "none":
            import dataclasses

            spec = dataclasses.replace(spec, face_crop="none")
        return preprocess(spec, image), True
    from tinysmile.data.preprocess import whole_image_crop

    pre = whole_image_crop(spec, image, detector)
    return pre.pixels, pre.face_found


def is_store(path: Path) -> bool:
    from tinysmile.data.store import DB_FILE

    return (path / DB_FILE).is_file()


# The training tasks: the store's (smile, attitude) and FER2013's seven emotions, which
# are no task of the store's but are read from the emotion folder each FER2013 sample was
# imported from (for pretraining an attitude model on the finer labels).
EMOTION_TASK = "emotion"


def task_labels(task: str) -> list[str]:
    """The class names of a training task, in label order."""
    from tinysmile.data.importers import FER_EMOTIONS
    from tinysmile.data.store import TASK_LABELS

    if task == EMOTION_TASK:
        return list(FER_EMOTIONS)
    if task not in TASK_LABELS:
        choices = ", ".join([*TASK_LABELS, EMOTION_TASK])
        raise TinysmileError(f"unknown task {task!r}; choose one of {choices}")
    return list(TASK_LABELS[task])


def sample_emotion(sample: Any) -> int | None:
    """FER2013's emotion of a sample imported from its folder layout (SPLIT/EMOTION/file),
    as an index into FER_EMOTIONS; None for any other sample."""
    from tinysmile.data.importers import FER_EMOTIONS

    if sample.source != "fer2013":
        return None
    name = Path(str(sample.original)).parent.name.lower()
    return FER_EMOTIONS.index(name) if name in FER_EMOTIONS else None


def parse_emotion_map(text: str | None, task: str) -> dict[int, int] | None:
    """``--emotion-map``: EMOTION=LABEL,... (say surprise=positive) over the importer's
    mapping of FER2013's emotions to the task's labels; None when not given."""
    from tinysmile.data.importers import FER_EMOTIONS, fer_label

    if not text:
        return None
    if task == EMOTION_TASK:
        raise TinysmileError(
            "--emotion-map maps emotions to a task's labels; not for --task emotion"
        )
    names = task_labels(task)
    out = {e: fer_label(e, task) for e in range(len(FER_EMOTIONS))}
    for part in text.split(","):
        if not part.strip():
            continue
        emotion, sep, label = (x.strip().lower() for x in part.partition("="))
        if not sep or emotion not in FER_EMOTIONS or label not in names:
            raise TinysmileError(
                f"--emotion-map: expected EMOTION=LABEL with EMOTION one of "
                f"{', '.join(FER_EMOTIONS)} and LABEL one of {', '.join(names)}; got {part!r}"
            )
        out[FER_EMOTIONS.index(emotion)] = names.index(label)
    return out


def _relabelled(samples: list, mapping: Mapping[int, int] | None, where: Path) -> list:
    """Each sample labelled by its FER2013 emotion (through ``mapping``, or as the emotion
    itself when None); a sample whose emotion is unknown is an error, not a silent drop."""
    import dataclasses

    out = []
    for s in samples:
        e = sample_emotion(s)
        if e is None:
            raise TinysmileError(
                f"{where}: sample {s.id[:12]} ({s.original}) has no FER2013 emotion folder;"
                " emotions come from FER2013 imported in its folder layout"
            )
        out.append(dataclasses.replace(s, label=e if mapping is None else mapping[e]))
    return out


def store_samples(
    store_dir: str | Path,
    split: str | None,
    task: str = "smile",
    emotion_map: Mapping[int, int] | None = None,
) -> list:
    """A task's labelled samples of a store. ``task`` "emotion": the store's FER2013
    samples (of whichever task they were imported for) labelled by their emotion;
    ``emotion_map``: the samples relabelled from their emotion by that mapping."""
    from tinysmile.data.store import Store

    root = Path(store_dir)
    if not is_store(root):
        raise TinysmileError(
            f"{root}: not a dataset store (create one with `tinysmile data import`)"
        )
    with Store(root, create=False) as store:
        if task != EMOTION_TASK:
            samples = store.samples(split=split, task=task)
            return samples if emotion_map is None else _relabelled(samples, emotion_map, root)
        tasks = [t for t in ("attitude", "smile") if t in store.tasks()]
        samples = store.samples(split=split, task=tasks[0]) if tasks else []
    return _relabelled(samples, None, root)


def split_samples_of(
    store_dir: str | Path,
    split: str,
    split_samples: Mapping[str, list] | None = None,
    task: str = "smile",
    emotion_map: Mapping[int, int] | None = None,
) -> list:
    """The store's samples in ``split``; with ``split_samples`` (a cross-validation fold:
    split name to samples), that mapping's, and none for a split it does not name."""
    if split_samples is None:
        return store_samples(store_dir, split, task, emotion_map)
    return list(split_samples.get(split, []))


def content_hashes(
    store_dir: str | Path,
    split_samples: Mapping[str, list] | None = None,
    task: str = "smile",
) -> dict[str, str]:
    """Per split, one sha256 over its samples' ids (each a content hash, sorted, a line
    each): what a model card names its data by, whatever folder the store lay in."""
    import hashlib

    out = {}
    for split in ("train", "val", "test"):
        ids = sorted(s.id for s in split_samples_of(store_dir, split, split_samples, task))
        out[split] = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    return out


def subset(samples: list, limit: int | None) -> list:
    """The first `limit` samples by id: ids are content hashes, so this is a fixed
    pseudo-random subset that keeps the class balance roughly intact."""
    if limit is None or limit >= len(samples):
        return list(samples)
    return sorted(samples, key=lambda s: s.id)[:limit]


def load_samples(spec: PreprocessSpec, samples: list, detector: Any = None) -> Arrays:
    if not samples:
        raise TinysmileError("no samples to load")
    pixels = np.empty((len(samples), spec.height, spec.width, 1), dtype=np.uint8)
    found = np.ones(len(samples), dtype=bool)
    for i, s in enumerate(samples):
        pixels[i], found[i] = _pixels(spec, s.path, detector, s.source)
    labels = np.array([int(s.label) for s in samples], dtype=np.int64)
    return Arrays(
        pixels=pixels,
        labels=labels,
        names=[s.id for s in samples],
        found=None if detector is None else found,
    )


def load_folder(
    spec: PreprocessSpec, folder: str | Path, task: str = "smile", detector: Any = None
) -> Arrays:
    """A class-per-folder tree (smile/ and no_smile/, or aliases the data importers know)."""
    from tinysmile.data.importers import list_folder

    listing = list_folder(Path(folder), task)
    items = [it for it in listing.items if it.path is not None]
    if not items:
        raise TinysmileError(f"{folder}: no images in the class folders")
    pixels = np.empty((len(items), spec.height, spec.width, 1), dtype=np.uint8)
    found = np.ones(len(items), dtype=bool)
    for i, it in enumerate(items):
        pixels[i], found[i] = _pixels(spec, it.path, detector)
    labels = np.array([it.label for it in items], dtype=np.int64)
    return Arrays(
        pixels=pixels,
        labels=labels,
        names=[str(it.path) for it in items],
        found=None if detector is None else found,
    )


def load_data(
    spec: PreprocessSpec,
    path: str | Path,
    split: str | None,
    task: str = "smile",
    limit: int | None = None,
    detector: Any = None,
) -> Arrays:
    """A store (one split, or all when split is None) or a class-per-folder tree; with a
    detector (tinysmile.pi.detect), each image cropped around the face it finds."""
    p = Path(path)
    if not p.exists():
        raise TinysmileError(f"{p}: no such store or folder")
    if is_store(p):
        samples = subset(store_samples(p, split, task), limit)
        if not samples:
            where = f"split {split!r}" if split else "any split"
            raise TinysmileError(f"{p}: no {task} samples in {where}")
        return load_samples(spec, samples, detector)
    arrays = load_folder(spec, p, task, detector)
    if limit is not None and limit < len(arrays.labels):
        found = None if arrays.found is None else arrays.found[:limit]
        arrays = Arrays(arrays.pixels[:limit], arrays.labels[:limit], arrays.names[:limit], found)
    return arrays
