"""Compiler benchmark: per model, MACs, weights, our arena against TFLite Micro's, and how
long compiling takes. Prints a table; run: .venv/bin/python bench/bench_compiler.py"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from rich.console import Console
from rich.table import Table

from tinysmile.bundle import default_bundle_path, load_bundle
from tinysmile.compiler.api import compile_model
from tinysmile.compiler.tflm import tflm_arena


def models() -> dict[str, bytes]:
    from models import build_mobilenet_block, build_smile_like

    found = {"smile_like": build_smile_like(), "mobilenet_block": build_mobilenet_block()}
    if (default_bundle_path() / "model.tflite").is_file():
        found["smile_default (bundled)"] = load_bundle().model_bytes()
    return found


def main() -> None:
    table = Table(title="tinysmile compiler vs TFLite Micro")
    for col in (
        "model",
        "ops",
        "MACs",
        "weights B",
        "our arena B",
        "TFLM head B",
        "TFLM total B",
        "compile s",
    ):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, data in models().items():
        with tempfile.TemporaryDirectory() as work:
            start = time.perf_counter()
            report = compile_model(data, work).report
            seconds = time.perf_counter() - start
        tflm = tflm_arena(data)
        table.add_row(
            name,
            str(len(report["layers"])),
            f"{report['macs']:,}",
            f"{report['weights_bytes']:,}",
            f"{report['arena_bytes']:,}",
            f"{tflm['head']:,}",
            f"{tflm['total']:,}",
            f"{seconds:.2f}",
        )
    Console(width=140).print(table)
    print(
        "our arena includes the input; the output goes to the caller's buffer."
        " TFLM's head holds its activations (input and output included), its tail the"
        " interpreter's persistent structures."
    )


if __name__ == "__main__":
    main()
