"""What an importer's lister returns: candidate samples (`Item`) and what it left out.

Kept apart from `importers` (the import loop) and `votes` (the votes lister) so that
both can import it at module top without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Item:
    """One candidate sample: where its bytes come from and what it is labelled."""

    original: str  # shown in reports and kept in the store (path, or file:row)
    label: int | None  # None: unlabelled, waits for raters (`tinysmile label serve`)
    suffix: str
    path: Path | None = None
    load: Callable[[], bytes] | None = None  # for images decoded from text (FER2013)
    split: str | None = None  # None: derive from the content hash
    votes: list[str] | None = None
    agreement: float | None = None

    def read(self) -> bytes:
        if self.load is not None:
            return self.load()
        assert self.path is not None
        return self.path.read_bytes()


@dataclass
class Listing:
    items: list[Item] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # found bad while listing
    dropped: list[tuple[str, str]] = field(default_factory=list)  # votes left unresolved
    agreement: dict[str, Any] | None = None
