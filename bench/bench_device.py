"""Device benchmark on the emulated Cortex-M4: per model, tinysmile's native runtime against
TFLite Micro (+ CMSIS-NN, the Arduino library built in place), side by side in one run:
instructions per inference and MACs per instruction, arena and total RAM (.data + .bss +
stack), flash (.text without the model, and the model's bytes), and the native/tflm ratio
of each; then each runtime's per-layer (per-operator) profile. Prints tables; not a test.

    python bench/bench_device.py [MODEL.tflite|BUNDLE ...] [--models default,person,...]
                                 [--tflm-lib DIR] [--json]

--models picks models by name: `default` (the bundled model) and the models of
tests/models.py (NAMED below: issue 10's person detector, mini-Xception and DS-CNN among
them; TensorFlow builds each once, then it is cached). Without models it uses the bundled
default model and the compiler's test models smile_like and mobilenet_block. The TFLite Micro library comes from
--tflm-lib, $TINYSMILE_TFLM_LIB, or ../shared/libraries/Arduino_TensorFlowLite; without it
only the native runtime is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
SHARED_TFLM = ROOT.parent / "shared" / "libraries" / "Arduino_TensorFlowLite"


# name -> builder in tests/models.py; "default" is the bundled model
NAMED = {
    "smile_like": "build_smile_like",
    "mobilenet_block": "build_mobilenet_block",
    "kernel_shapes": "build_kernel_shapes",
    "person": "build_person",
    "xception": "build_xception",
    "dscnn": "build_dscnn",
}


def named_models(names: list[str], tmp: Path) -> list[Path]:
    from tinysmile.bundle import default_bundle_path

    sys.path.insert(0, str(ROOT / "tests"))
    import models

    out = []
    for name in names:
        if name == "default":
            out.append(default_bundle_path())
            continue
        if name not in NAMED:
            raise SystemExit(f"error: no model named {name!r} (default, {', '.join(NAMED)})")
        p = tmp / f"{name}.tflite"
        p.write_bytes(getattr(models, NAMED[name])())
        out.append(p)
    return out


def default_models(tmp: Path) -> list[Path]:
    from tinysmile.bundle import default_bundle_path

    names = ["smile_like", "mobilenet_block"]
    if (default_bundle_path() / "model.tflite").is_file():
        names.insert(0, "default")
    return named_models(names, tmp)


def bench_runtime(model: Path, board_id: str, runtime: str, tflm_lib: str | None) -> dict:
    from tinysmile.boards import load_board
    from tinysmile.bundle import load_bundle
    from tinysmile.device import emulator
    from tinysmile.device.pio import elf_sizes
    from tinysmile.device.profile import profile
    from tinysmile.device.session import build, client_for

    board = load_board(board_id)
    bundle = load_bundle(model)
    project = build(bundle, board, runtime=runtime, tflm_lib_dir=tflm_lib)
    st = emulator.start(board, project.elf, project.tag, register=False)
    try:
        client = client_for(board, st.port)
        try:
            hello = client.handshake()
            prof = profile(client, board, project.report, runtime=runtime)
        finally:
            client.close()
    finally:
        emulator.kill(st)
    s = elf_sizes(project.elf)
    model_bytes = (
        len(bundle.model_bytes()) if runtime == "tflm" else int(project.report["weights_bytes"])
    )
    return {
        "runtime": runtime,
        "instructions": prof.total,
        "macs": prof.macs,
        "macs_per_instruction": prof.macs_per_count,
        # The native arena is the planner's static plan; TFLM's is arena_used_bytes()
        # measured on the device (the sketch allocates the exported size, with the margin).
        "arena": int(hello.arena_used or hello.arena_size),
        "arena_allocated": int(hello.arena_size),
        "ram_total": s.get(".data", 0) + s.get(".bss", 0) + s.get(".stack", 0),
        "text": s.get(".text", 0) + s.get(".ARM.exidx", 0),
        "model_bytes": model_bytes,
        "profile": prof.to_dict(),
    }


ROWS = [
    ("instructions / inference", "instructions", "{:,}"),
    ("MACs / instruction", "macs_per_instruction", "{:.3f}"),
    ("arena (B)", "arena", "{:,}"),
    ("RAM: .data + .bss + stack (B)", "ram_total", "{:,}"),
    ("flash: .text without the model (B)", "text", "{:,}"),
    ("flash: the model (B)", "model_bytes", "{:,}"),
]


def print_model(con: Console, name: str, runs: dict[str, dict]) -> None:
    from tinysmile.device.commands import profile_table

    t = Table(
        title=f"{name}: native against TFLite Micro + CMSIS-NN ({runs['native']['macs']:,} MACs)"
    )
    t.add_column("")
    for rt in runs:
        t.add_column(rt, justify="right")
    if "tflm" in runs:
        t.add_column("native / tflm", justify="right")
    for label, key, fmt in ROWS:
        cells = [fmt.format(runs[rt][key]) for rt in runs]
        if "tflm" in runs:
            cells.append(f"{runs['native'][key] / runs['tflm'][key]:.2f}")
        t.add_row(label, *cells)
    con.print(t)
    for rt, res in runs.items():
        prof = res["profile"]
        con.print(profile_table({**prof, "model": f"{name} ({rt})", "board": "qemu-cortex-m4"}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument(
        "--models", dest="models_by_name", default=None, help="comma-separated names (see NAMED)"
    )
    ap.add_argument("--board", default="qemu-cortex-m4")
    ap.add_argument("--tflm-lib", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    lib = args.tflm_lib or os.environ.get("TINYSMILE_TFLM_LIB")
    if lib is None and SHARED_TFLM.is_dir():
        lib = str(SHARED_TFLM)
    runtimes = ["native", "tflm"] if lib else ["native"]
    con = Console(highlight=False)
    if not lib:
        con.print("no TFLite Micro library (--tflm-lib): measuring the native runtime only")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        models = list(args.models)
        if args.models_by_name:
            models += named_models(args.models_by_name.split(","), Path(tmp))
        models = models or default_models(Path(tmp))
        for m in models:
            name = m.stem if m.suffix == ".tflite" else m.name
            runs = {}
            for rt in runtimes:
                with con.status(f"building and profiling {name} ({rt})…"):
                    runs[rt] = bench_runtime(m, args.board, rt, lib)
            results[name] = runs
            if not args.json:
                print_model(con, name, runs)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
