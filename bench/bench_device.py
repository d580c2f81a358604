"""Device benchmark on the emulated Cortex-M4: per model, tinysmile's native runtime against
TFLite Micro (+ CMSIS-NN, the Arduino library built in place), side by side in one run:
instructions per inference and MACs per instruction, arena and total RAM (.data + .bss +
stack), flash (.text without the model, and the model's bytes), and the native/tflm ratio
of each; then each runtime's per-layer (per-operator) profile. Prints tables; not a test.

    python bench/bench_device.py [MODEL.tflite|BUNDLE ...] [--models default,person,...]
                                 [--tflm-lib DIR] [--per-layer] [--json]

--models picks models by name: `default` (the bundled model) and the models of
tests/models.py (NAMED below: issue 10's person detector, mini-Xception and DS-CNN among
them; TensorFlow builds each once, then it is cached). Without models it uses the bundled
default model and the compiler's test models smile_like and mobilenet_block. The TFLite Micro library comes from
--tflm-lib, $TINYSMILE_TFLM_LIB, or ../shared/libraries/Arduino_TensorFlowLite; without it
only the native runtime is measured.

--per-layer puts the two runtimes' profiles side by side instead: every layer's
instructions, native and TFLite Micro's (one PROFILE event per operator, its profiler's
few calls included), their ratio, then the layers of all models with the worst ratio.
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
    "depthwise_shapes": "build_depthwise_shapes",
    "person": "build_person",
    "xception": "build_xception",
    "dscnn": "build_dscnn",
    "keyword": "build_keyword",
    "sww": "build_sww",
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


def print_model(con: Console, name: str, runs: dict[str, dict], profiles: bool = True) -> None:
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
    for rt, res in runs.items() if profiles else ():
        prof = res["profile"]
        con.print(profile_table({**prof, "model": f"{name} ({rt})", "board": "qemu-cortex-m4"}))


WORST = 10  # rows of the worst-layers table


def layer_pairs(runs: dict[str, dict]) -> list[dict]:
    """Each layer's native and TFLite Micro counts (both runtimes run the model's
    operators in order, one profile row each), with the ratio; [] when the two profiles
    do not line up (a model whose float edges the compiler stripped)."""
    if "tflm" not in runs:
        return []
    ours, theirs = runs["native"]["profile"]["layers"], runs["tflm"]["profile"]["layers"]
    if len(ours) != len(theirs):
        return []
    return [
        {
            "layer": a["layer"],
            "kind": a["kind"],
            "variant": a["variant"],
            "macs": a["macs"],
            "native": a["count"],
            "tflm": b["count"],
            "ratio": a["count"] / b["count"] if b["count"] else float("inf"),
        }
        for a, b in zip(ours, theirs)
    ]


def print_per_layer(con: Console, name: str, rows: list[dict]) -> None:
    t = Table(title=f"{name}: instructions per layer (ratio: native / tflm)")
    for col in ("layer", "kind", "variant", "MACs", "native", "tflm", "ratio"):
        t.add_column(col, justify="left" if col in ("kind", "variant") else "right")
    for r in rows:
        t.add_row(
            str(r["layer"]),
            r["kind"],
            r["variant"],
            f"{r['macs']:,}",
            f"{r['native']:,}",
            f"{r['tflm']:,}",
            f"{r['ratio']:.2f}",
        )
    con.print(t)


def print_worst(con: Console, per_model: dict[str, list[dict]]) -> None:
    rows = [(name, r) for name, rs in per_model.items() for r in rs]
    rows.sort(key=lambda nr: -nr[1]["ratio"])
    t = Table(title=f"the {min(WORST, len(rows))} layers with the worst native / tflm ratio")
    for col in ("model", "layer", "kind", "variant", "native", "tflm", "ratio"):
        t.add_column(col, justify="left" if col in ("model", "kind", "variant") else "right")
    for name, r in rows[:WORST]:
        t.add_row(
            name,
            str(r["layer"]),
            r["kind"],
            r["variant"],
            f"{r['native']:,}",
            f"{r['tflm']:,}",
            f"{r['ratio']:.2f}",
        )
    con.print(t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument(
        "--models", dest="models_by_name", default=None, help="comma-separated names (see NAMED)"
    )
    ap.add_argument("--board", default="qemu-cortex-m4")
    ap.add_argument("--tflm-lib", default=None)
    ap.add_argument(
        "--per-layer",
        action="store_true",
        help="every layer native against TFLite Micro, then the worst layers",
    )
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
    per_model: dict[str, list[dict]] = {}
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
            if args.per_layer:
                per_model[name] = layer_pairs(runs)
            if args.json:
                continue
            print_model(con, name, runs, profiles=not args.per_layer)
            if args.per_layer and per_model[name]:
                print_per_layer(con, name, per_model[name])
            elif args.per_layer:
                con.print(f"{name}: no per-layer comparison (no tflm run, or its layers differ)")
    if args.json:
        for name, rows in per_model.items():
            results[name] = {**results[name], "per_layer": rows}
        print(json.dumps(results, indent=2))
    elif any(per_model.values()):
        print_worst(con, per_model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
