"""The model bundle: one folder that carries everything downstream needs.

Layout of a bundle folder::

    NAME/
      model.tflite     full-int8 model (int8 input and output)
      bundle.json      preprocessing spec, labels, threshold, metrics, provenance
      MODEL_CARD.md    optional, human-readable

A bare ``.tflite`` is accepted wherever a bundle is: it gets a spec derived from its
input shape (no face crop, pixels 0..255 mapped linearly to the input's float range).
Training, the compiler, the Pi runtime and verification all read the preprocessing
from here so that train and serve cannot silently disagree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinysmile.errors import TinysmileError
from tinysmile.resources import models_dir

BUNDLE_FORMAT = "tinysmile-bundle/1"
MODEL_FILE = "model.tflite"
META_FILE = "bundle.json"
DEFAULT_MODEL_NAME = "smile_default"


@dataclass
class Bundle:
    path: Path  # the bundle folder, or the .tflite for a bare model
    model_path: Path
    name: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def preprocess(self) -> dict[str, Any]:
        return self.meta.get("preprocess", {})

    @property
    def labels(self) -> list[str]:
        return self.meta.get("labels", [])

    @property
    def threshold(self) -> float | None:
        return self.meta.get("threshold")

    def model_bytes(self) -> bytes:
        return self.model_path.read_bytes()

    def model_hash(self) -> str:
        return hashlib.sha256(self.model_bytes()).hexdigest()


def default_bundle_path() -> Path:
    return models_dir() / DEFAULT_MODEL_NAME


def load_bundle(path: str | Path | None = None) -> Bundle:
    """Open a bundle folder, its bundle.json, a bare .tflite, or a bundled model by name
    (tinysmile/models: smile_default, attitude_default); None means the default."""
    p = Path(path) if path is not None else default_bundle_path()
    if not p.exists() and path is not None and (models_dir() / str(path) / MODEL_FILE).is_file():
        # A bundled model by its name: smile_default, attitude_default.
        p = models_dir() / str(path)
    if not p.exists():
        if path is None:
            raise TinysmileError(
                f"the bundled default model is missing ({p}); pass a model explicitly"
            )
        raise TinysmileError(f"{p}: no such model file or bundle folder")
    if p.is_file() and p.name == META_FILE:
        p = p.parent
    if p.is_dir():
        meta_path = p / META_FILE
        model_path = p / MODEL_FILE
        if not model_path.is_file():
            raise TinysmileError(f"{p}: not a model bundle (no {MODEL_FILE} inside)")
        meta: dict[str, Any] = {}
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text())
            except json.JSONDecodeError as exc:
                raise TinysmileError(f"{meta_path}: not valid JSON ({exc})") from None
            fmt = meta.get("format", BUNDLE_FORMAT)
            if fmt != BUNDLE_FORMAT:
                raise TinysmileError(f"{meta_path}: unknown bundle format {fmt!r}")
        return Bundle(path=p, model_path=model_path, name=meta.get("name", p.name), meta=meta)
    return Bundle(path=p, model_path=p, name=p.stem, meta={})


def write_bundle(folder: str | Path, model: bytes, meta: dict[str, Any]) -> Bundle:
    """Write model.tflite and bundle.json into folder (created if needed)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_FILE).write_bytes(model)
    meta = {"format": BUNDLE_FORMAT, "name": meta.get("name", out.name), **meta}
    meta["model_sha256"] = hashlib.sha256(model).hexdigest()
    (out / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return load_bundle(out)
