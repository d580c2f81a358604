"""Where the package's data folders are: inside the wheel, or beside the source tree."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    # A wheel carries the folders under tinysmile/_data (see pyproject's force-include);
    # a source checkout or an editable install has them at the repository's top level.
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"tinysmile's {name}/ folder is missing from this installation")


def firmware_dir() -> Path:
    return _data_dir("firmware")


def templates_dir() -> Path:
    return _data_dir("templates")


def boards_dir() -> Path:
    return _data_dir("boards")


def models_dir() -> Path:
    """Bundled model bundles (the default smile model lives here)."""
    return _PKG / "models"
