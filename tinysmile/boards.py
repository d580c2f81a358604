"""Board descriptions: boards/*.toml, loaded with tomllib. Python never names a board."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

from tinysmile.errors import TinysmileError
from tinysmile.resources import boards_dir


@dataclass(frozen=True)
class Board:
    id: str
    path: Path
    data: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @property
    def name(self) -> str:
        return self.data.get("name", self.id)

    @property
    def emulated(self) -> bool:
        return bool(self.data.get("emulated", False))

    @property
    def qemu(self) -> dict[str, Any]:
        return self.data.get("qemu", {})

    @property
    def serial(self) -> dict[str, Any]:
        return self.data.get("serial", {})

    @property
    def camera(self) -> dict[str, Any] | None:
        """The camera table (driver, frame size, libraries), or None: `camera = false`."""
        cam = self.data.get("camera", False)
        return cam if isinstance(cam, dict) else None

    @property
    def pins(self) -> dict[str, Any]:
        return self.data.get("pins", {})

    @property
    def platformio(self) -> dict[str, Any]:
        return self.data.get("platformio", {})

    @property
    def framework_bytes(self) -> tuple[int, int]:
        """(flash, RAM) the board's framework takes before tinysmile's code: 0 for bare metal."""
        b = self.data.get("budget", {})
        return int(b.get("framework_flash_bytes", 0)), int(b.get("framework_ram_bytes", 0))

    @property
    def counter(self) -> dict[str, Any]:
        return self.data.get("counter", {})

    @property
    def counter_unit(self) -> str:
        return self.data.get("counter", {}).get("unit", "cycles")

    def ticks_to_count(self, ticks: int) -> int:
        """Device ticks -> the board's counter unit (cycles, or instructions under -icount).

        Under -icount shift=N an instruction lasts 2^N ns and a tick 1e9/clock_hz ns; after
        i instructions the counter shows floor(i * 2^N * clock_hz / 1e9) ticks. When that
        ratio is >= 1 the map is injective and i = ceil(ticks / ratio) recovers it exactly.
        """
        shift = self.qemu.get("icount_shift")
        if shift is None:
            return ticks
        ratio = Fraction(2**shift * int(self.data["clock_hz"]), 10**9)
        q = Fraction(ticks) / ratio
        return -((-q.numerator) // q.denominator)

    def count_between(self, start_ticks: int, end_ticks: int) -> int:
        """Counter units between two stamps taken since the same counter restart: each
        stamp is converted on its own (see ticks_to_count), then subtracted."""
        return self.ticks_to_count(end_ticks) - self.ticks_to_count(start_ticks)


def list_boards() -> list[str]:
    return sorted(p.stem for p in boards_dir().glob("*.toml"))


def default_board_id() -> str:
    """The board marked `default = true` in its file (the emulated one, shipped)."""
    for board_id in list_boards():
        if load_board(board_id).get("default", False):
            return board_id
    raise TinysmileError("no board file is marked default = true; pass --board")


def load_board(board_id: str | None) -> Board:
    if board_id is None:
        board_id = default_board_id()
    path = boards_dir() / f"{board_id}.toml"
    if not path.is_file():
        raise TinysmileError(
            f"unknown board {board_id!r} (known: {', '.join(list_boards()) or 'none'})"
        )
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise TinysmileError(f"{path}: {exc}") from None
    if data.get("id", board_id) != board_id:
        raise TinysmileError(f"{path}: id {data.get('id')!r} differs from the file name")
    return Board(id=board_id, path=path, data=data)
