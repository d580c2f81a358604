"""Rater-vote CSVs (work in progress)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tinysmile.errors import TinysmileError


def list_votes(path: Path, task: str, **options: Any) -> Any:
    raise TinysmileError("votes import is not implemented yet")
