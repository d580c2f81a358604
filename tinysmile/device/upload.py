"""Uploads through a board's own uploader script (a board file's [upload] table).

The Apollo3 core ships its uploaders as Python scripts: Ambiq's secure bootloader
(`ambiq_bin2board.py`, what a stock SparkFun Edge has) and SparkFun's variable loader
(`artemis_svl.py`). They run in this Python (pyserial and pycryptodome are tinysmile's
dependencies; nothing is installed during a build), with -B so that running them writes no
bytecode beside the core's sources. Both exit 0 whatever happened: their output decides.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tinysmile.boards import Board
from tinysmile.errors import TinysmileError


def command(board: Board, core: Path, bin_path: Path, port: str) -> list[str]:
    """The uploader's command line for this firmware and port (nothing is opened)."""
    up = board["upload"]
    script = core / up["script"]
    if not script.is_file():
        raise TinysmileError(
            f"the core {core} has no uploader {up['script']} for {up['protocol']} uploads"
        )
    values = {"bin": str(bin_path), "port": port, "address": up["address"], "baud": up["baud"]}
    return [sys.executable, "-B", str(script), *[str(a).format(**values) for a in up["args"]]]


def describe(board: Board, port: str | None) -> dict[str, Any]:
    up = board["upload"]
    return {"protocol": up["protocol"], "address": up["address"], "port": port}


def _reason(text: str) -> str:
    """The uploader's own words for what went wrong: its line about the port if there is
    one, else its last line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        low = ln.lower()
        if "not found" in low or "currently open" in low or "failed to enter" in low:
            return ln
    return lines[-1] if lines else "no output"


def run(board: Board, cmd: list[str], port: str, log: Path, timeout: float = 600.0) -> None:
    """Run the uploader; fail with one line unless its output says the upload completed."""
    up = board["upload"]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TinysmileError(f"the {up['protocol']} upload to {port} took over {timeout:.0f} s")
    text = proc.stdout + proc.stderr
    log.write_text(text)
    if proc.returncode == 0 and up["success"] in text:
        return
    raise TinysmileError(
        f"the {up['protocol']} upload to {port} failed: {_reason(text)} (log: {log})"
    )
