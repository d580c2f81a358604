"""What TFLite Micro needs for the same model: its recording allocator's arena report.

The bar for the planner, and the arena size a TFLM sketch gets. Needs the `tflite-micro`
package (extra `tflm`).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tinysmile.errors import TinysmileError

_LINE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")

# The report is printed by TFLM's C++ through a stdio buffer of its own, which is flushed
# only at exit: a child process is the reliable way to read it.
_PROBE = """
import sys
from tflite_micro.python.tflite_micro import runtime
interp = runtime.Interpreter.from_bytes(open(sys.argv[1], "rb").read(), arena_size=int(sys.argv[2]))
interp.print_allocations()
"""


def tflm_arena(model: str | Path | bytes, arena_size: int = 4 << 20) -> dict[str, int]:
    """{'total', 'head', 'tail'} bytes: head is the non-persistent part (activations)."""
    data = model if isinstance(model, bytes | bytearray) else Path(model).read_bytes()
    with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(data)
        f.flush()
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, f.name, str(arena_size)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if "No module named 'tflite_micro'" in proc.stderr:
        raise TinysmileError(
            "the tflite-micro package is not installed (pip install 'tinysmile[tflm]')"
        )
    found = {k: int(v) for k, v in _LINE.findall(proc.stdout + proc.stderr)}
    if set(found) != {"total", "head", "tail"}:
        raise TinysmileError(
            f"TFLite Micro gave no allocation report (exit {proc.returncode}):"
            f" {proc.stderr.strip()[-300:]}"
        )
    return found
