"""Production logging: every frame the bot decides on, kept within a byte budget.

Layout of a log folder::

    DIR/
      000000042-20261130T071502.123456Z/
        crop.png       the model's input pixels (lossless: exactly what it saw)
        frame.jpg      the whole frame, long side at most `frame_side` (absent when 0)
        entry.json     face box, probability, decision, int8 output, engine, model hash, time
        map.png        with `pi run --explain`: the occlusion map (tinysmile.train.explain)

An entry is written into a hidden `.part-*` folder, its files flushed to disk, and then
renamed into place; deletion renames to `.gone-*` first. A rename is atomic on POSIX
file systems, so after a crash or a power cut an entry is either whole or absent, and
leftover hidden folders are removed when the log is opened. Names start with a sequence
number that goes on from the log's last entry, not with the time: a Pi without a clock
battery can boot into an earlier time, and the oldest entries must still be the first ones
dropped when the budget is exceeded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinysmile.errors import TinysmileError

CROP_FILE = "crop.png"
FRAME_FILE = "frame.jpg"
ENTRY_FILE = "entry.json"
FORMAT = "tinysmile-capture/1"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'500MB', '2GiB', '800k', '1000' -> bytes (KB/MB/GB are powers of 1000, KiB... 1024)."""
    m = _SIZE.match(text)
    if not m:
        raise TinysmileError(f"--log-budget {text!r}: give a size such as 500MB or 2GiB")
    value, unit, binary = float(m.group(1)), m.group(2).lower(), bool(m.group(3))
    power = "kmgt".index(unit) + 1 if unit else 0
    n = int(value * (1024 if binary else 1000) ** power)
    if n <= 0:
        raise TinysmileError(f"--log-budget {text!r}: must be more than 0 bytes")
    return n


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


@dataclass
class Entry:
    path: Path
    size: int


class CaptureLog:
    def __init__(self, folder: str | Path, budget: int, frame_side: int = 640) -> None:
        self.root = Path(folder)
        if self.root.exists() and not self.root.is_dir():
            raise TinysmileError(f"--log {self.root}: exists and is not a folder")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TinysmileError(f"--log {self.root}: cannot create ({exc.strerror})") from None
        self.budget = budget
        self.frame_side = frame_side
        self.dropped = 0  # entries removed for the budget
        self.too_big = 0  # entries larger than the whole budget, never kept
        for leftover in self.root.glob(".part-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in self.root.glob(".gone-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        self.entries = [Entry(p, _tree_size(p)) for p in entry_folders(self.root)]
        self.used = sum(e.size for e in self.entries)
        self._seq = max((_seq_of(e.path) for e in self.entries), default=0)
        self._enforce()

    def add(
        self,
        crop: np.ndarray,
        frame: np.ndarray | None,
        meta: dict[str, Any],
        extra: dict[str, bytes] | None = None,
    ) -> Path | None:
        """Keep one decision; returns its folder (None when it alone exceeds the budget).
        extra: more files of the entry, by name (`pi run --explain`'s map)."""
        import cv2

        self._seq += 1
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
        name = f"{self._seq:09d}-{stamp}"
        files: dict[str, bytes] = {}
        ok, png = cv2.imencode(".png", np.ascontiguousarray(crop))
        if not ok:
            raise TinysmileError("capture log: the crop cannot be encoded as PNG")
        files[CROP_FILE] = png.tobytes()
        if frame is not None and self.frame_side > 0:
            h, w = frame.shape[:2]
            scale = min(1.0, self.frame_side / max(h, w))
            small = frame
            if scale < 1.0:
                small = cv2.resize(
                    frame,
                    (max(1, round(w * scale)), max(1, round(h * scale))),
                    interpolation=cv2.INTER_AREA,
                )
            ok, jpg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if ok:
                files[FRAME_FILE] = jpg.tobytes()
                meta = {**meta, "frame_scale": scale}
        for fname, data in (extra or {}).items():
            if fname in (CROP_FILE, FRAME_FILE, ENTRY_FILE) or "/" in fname:
                raise TinysmileError(f"capture log: {fname!r} cannot be an extra file")
            files[fname] = data
        meta = {"format": FORMAT, "time": now, **meta}
        files[ENTRY_FILE] = (json.dumps(meta, sort_keys=True) + "\n").encode()
        size = sum(len(b) for b in files.values())
        if size > self.budget:
            self.too_big += 1
            return None
        part = self.root / f".part-{name}"
        part.mkdir()
        for fname, data in files.items():
            _write(part / fname, data)
        _fsync_dir(part)
        final = self.root / name
        part.rename(final)
        _fsync_dir(self.root)
        self.entries.append(Entry(final, size))
        self.used += size
        self._enforce()
        return final if final.exists() else None

    def _enforce(self) -> None:
        while self.used > self.budget and self.entries:
            old = self.entries.pop(0)
            gone = self.root / f".gone-{old.path.name}"
            old.path.rename(gone)
            shutil.rmtree(gone, ignore_errors=True)
            self.used -= old.size
            self.dropped += 1


def _seq_of(path: Path) -> int:
    head = path.name.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def entry_folders(root: Path) -> list[Path]:
    """Whole entries of a log folder, oldest first (hidden half-written ones left out)."""
    found = [
        p
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / ENTRY_FILE).is_file()
    ]
    return sorted(found, key=lambda p: (_seq_of(p), p.name))


def read_entry(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads((path / ENTRY_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TinysmileError(f"{path}: not a readable capture ({exc})") from None
    if meta.get("format") != FORMAT:
        raise TinysmileError(f"{path}: unknown capture format {meta.get('format')!r}")
    return meta
