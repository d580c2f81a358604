"""What TFLite Micro needs for the same model: its recording allocator's arena report.

The bar for the planner, and (issue: real boards) the arena size a TFLM sketch gets.
Needs the `tflite-micro` package (extra `tflm`).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

from tinysmile.errors import TinysmileError

_LINE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


def tflm_arena(model: str | Path | bytes, arena_size: int = 4 << 20) -> dict[str, int]:
    """{'total', 'head', 'tail'} bytes: head is the non-persistent part (activations)."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise TinysmileError(
            "the tflite-micro package is not installed (pip install 'tinysmile[tflm]')"
        ) from None
    data = model if isinstance(model, bytes | bytearray) else Path(model).read_bytes()
    interp = runtime.Interpreter.from_bytes(bytes(data), arena_size=arena_size)
    # The recording allocator prints from C++ straight to file descriptor 1.
    sys.stdout.flush()
    fd = sys.stdout.fileno() if hasattr(sys.stdout, "fileno") else 1
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), fd)
        try:
            interp.print_allocations()
        finally:
            sys.stdout.flush()
            os.dup2(saved, fd)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode(errors="replace")
    found = {k: int(v) for k, v in _LINE.findall(text)}
    if set(found) != {"total", "head", "tail"}:
        raise TinysmileError(f"unexpected TFLM allocation report: {text[:200]!r}")
    return found
