"""Device benchmark on the emulated Cortex-M4: per model, tinysmile's native runtime against
TFLite Micro (+ CMSIS-NN, built in place from a local copy), side by side in one run:
instructions per inference and MACs per instruction, arena and total RAM (.data + .bss +
stack), flash (.text without the model, and the model's bytes), and the native/tflm ratio
of each; then each runtime's per-layer (per-operator) profile. Prints tables; not a test.

    python bench/bench_device.py [MODEL.tflite|BUNDLE ...] [--models default,person,...]
                                 [--tflm-lib DIR[,DIR...]] [--per-layer] [--json]

--models picks models by name: `default` (the bundled model) and the models of
tests/models.py (NAMED below: issue 10's person detector, mini-Xception and DS-CNN among
them; TensorFlow builds each once, then it is cached), and `corpus`, the speed corpus of
bench/corpus.py (seeded random layer stacks and MLPerf-Tiny-like models), whole or by
name. Without models it uses the bundled default model and the compiler's test models
smile_like and mobilenet_block.

--tflm-lib names the TFLite Micro libraries, each a column: repeat it or separate folders
with commas (`--tflm-lib ../shared/libraries/tflite-micro,../shared/libraries/Arduino_TensorFlowLite`
sets native against both). Default: $TINYSMILE_TFLM_LIB, else the newest TFLite Micro,
../shared/libraries/tflite-micro (a source tree); without any, only the native runtime is
measured. A source tree's column is `tflm`, the Arduino library's `tflm-arduino`.

A model that a TFLite Micro library refuses (its prepare fails, say) is reported as refused
in that column, and the run goes on; after several models, a table of their totals.

--per-layer puts the runtimes' profiles side by side instead: every layer's instructions,
native and each TFLite Micro's (one PROFILE event per operator, its profiler's few calls
included), their ratios, then the layers of all models with the worst ratio against the
first library.
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
SHARED_LIBS = ROOT.parent / "shared" / "libraries"
SHARED_TFLM = SHARED_LIBS / "tflite-micro"


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
    sys.path.insert(0, str(ROOT / "bench"))
    import corpus
    import models

    out = []
    names = [n for name in names for n in (corpus.MODELS if name == "corpus" else [name])]
    for name in names:
        if name == "default":
            out.append(default_bundle_path())
            continue
        if name not in NAMED and name not in corpus.MODELS:
            known = ", ".join(["default", *NAMED, "corpus", *corpus.MODELS])
            raise SystemExit(f"error: no model named {name!r} ({known})")
        p = tmp / f"{name}.tflite"
        p.write_bytes(
            corpus.MODELS[name]() if name in corpus.MODELS else getattr(models, NAMED[name])()
        )
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
        "library": tflm_lib,
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


def tflm_labels(runs: dict[str, dict]) -> list[str]:
    """The TFLite Micro columns that ran the model (not the ones that refused it)."""
    return [rt for rt in runs if rt != "native" and "refused" not in runs[rt]]


def refused_labels(runs: dict[str, dict]) -> list[str]:
    return [rt for rt in runs if "refused" in runs[rt]]


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"  # a model without MACs has no MACs per instruction


def print_model(con: Console, name: str, runs: dict[str, dict], profiles: bool = True) -> None:
    from tinysmile.device.commands import profile_table

    t = Table(
        title=f"{name}: native against TFLite Micro + CMSIS-NN ({runs['native']['macs']:,} MACs)"
    )
    t.add_column("")
    for rt in runs:
        t.add_column(rt, justify="right")
    labels = tflm_labels(runs)
    for label in labels:
        t.add_column(f"native / {label}", justify="right")
    for row, key, fmt in ROWS:
        cells = ["refused" if "refused" in runs[rt] else fmt.format(runs[rt][key]) for rt in runs]
        cells += [ratio(runs["native"][key], runs[label][key]) for label in labels]
        t.add_row(row, *cells)
    con.print(t)
    for rt in refused_labels(runs):
        con.print(f"{name}: {rt} refused the model: {runs[rt]['refused']}")
    for rt, res in runs.items() if profiles else ():
        if "refused" in res:
            continue
        prof = res["profile"]
        con.print(profile_table({**prof, "model": f"{name} ({rt})", "board": "qemu-cortex-m4"}))


WORST = 10  # rows of the worst-layers table


def layer_pairs(runs: dict[str, dict]) -> list[dict]:
    """Each layer's native and TFLite Micro counts (every runtime runs the model's operators
    in order, one profile row each), one count and one ratio (`native / LABEL`) per library;
    [] when the profiles do not line up (a model whose float edges the compiler stripped)."""
    labels = tflm_labels(runs)
    ours = runs["native"]["profile"]["layers"]
    theirs = {label: runs[label]["profile"]["layers"] for label in labels}
    if not labels or any(len(layers) != len(ours) for layers in theirs.values()):
        return []
    rows = []
    for i, a in enumerate(ours):
        row = {k: a[k] for k in ("layer", "kind", "variant", "macs")} | {"native": a["count"]}
        for label in labels:
            count = theirs[label][i]["count"]
            row[label] = count
            row[f"native / {label}"] = a["count"] / count if count else float("inf")
        rows.append(row)
    return rows


def print_per_layer(con: Console, name: str, rows: list[dict]) -> None:
    labels = [k for k in rows[0] if k not in ("layer", "kind", "variant", "macs", "native")]
    t = Table(title=f"{name}: instructions per layer")
    for col in ("layer", "kind", "variant", "MACs", "native", *labels):
        t.add_column(col, justify="left" if col in ("kind", "variant") else "right")
    for r in rows:
        cells = [f"{r[k]:.2f}" if k.startswith("native / ") else f"{r[k]:,}" for k in labels]
        t.add_row(
            str(r["layer"]), r["kind"], r["variant"], f"{r['macs']:,}", f"{r['native']:,}", *cells
        )
    con.print(t)


def print_worst(con: Console, per_model: dict[str, list[dict]], label: str) -> None:
    ratio = f"native / {label}"
    rows = [(name, r) for name, rs in per_model.items() for r in rs if ratio in r]
    rows.sort(key=lambda nr: -nr[1][ratio])
    t = Table(title=f"the {min(WORST, len(rows))} layers with the worst {ratio} ratio")
    for col in ("model", "layer", "kind", "variant", "native", label, "ratio"):
        t.add_column(col, justify="left" if col in ("model", "kind", "variant") else "right")
    for name, r in rows[:WORST]:
        t.add_row(
            name,
            str(r["layer"]),
            r["kind"],
            r["variant"],
            f"{r['native']:,}",
            f"{r[label]:,}",
            f"{r[ratio]:.2f}",
        )
    con.print(t)


KEYS = ("native", "arena", ".text")  # the totals' ratios


def print_totals(con: Console, results: dict[str, dict[str, dict]], label: str) -> None:
    """One row per model: its totals against the first library (the README's table)."""
    t = Table(title=f"totals: native against {label}")
    for col in ("model (MACs)", "native", label, *(f"{k} / {label}" for k in KEYS)):
        t.add_column(col, justify="right")
    for name, runs in results.items():
        nat, lib = runs["native"], runs.get(label, {"refused": "not run"})
        head = [f"{name} ({nat['macs']:,})", f"{nat['instructions']:,}"]
        if "refused" in lib:
            t.add_row(*head, "refused", "-", "-", "-")
            continue
        t.add_row(
            *head,
            f"{lib['instructions']:,}",
            f"{nat['instructions'] / lib['instructions']:.2f}",
            f"{nat['arena'] / lib['arena']:.2f}",
            f"{nat['text'] / lib['text']:.2f}",
        )
    con.print(t)


def tflm_columns(given: list[str], con: Console) -> dict[str, str]:
    """Column label -> library folder, in the order given: a source tree is `tflm`, the
    Arduino library `tflm-arduino` (numbered when two of a kind are given)."""
    from tinysmile.device import tflm_lib

    out: dict[str, str] = {}
    for folder in given:
        lib = tflm_lib.locate(folder)
        label = "tflm" if lib.layout == tflm_lib.SOURCE_TREE else "tflm-arduino"
        n = 2
        while label in out:
            label, n = f"{label.split('#')[0]}#{n}", n + 1
        out[label] = folder
        version = "" if lib.layout == tflm_lib.SOURCE_TREE else f", version {lib.version}"
        con.print(f"{label}: {lib.layout.name}, {lib.root}{version}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument(
        "--models", dest="models_by_name", default=None, help="comma-separated names (see NAMED)"
    )
    ap.add_argument("--board", default="qemu-cortex-m4")
    ap.add_argument(
        "--tflm-lib",
        action="append",
        default=None,
        help="a TFLite Micro library, one column each (repeat, or separate with commas)",
    )
    ap.add_argument(
        "--per-layer",
        action="store_true",
        help="every layer native against TFLite Micro, then the worst layers",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from tinysmile.errors import TinysmileError

    given = [d for arg in args.tflm_lib or [] for d in arg.split(",") if d]
    if not given and os.environ.get("TINYSMILE_TFLM_LIB"):
        given = [os.environ["TINYSMILE_TFLM_LIB"]]
    if not given and SHARED_TFLM.is_dir():
        given = [str(SHARED_TFLM)]
    con = Console(highlight=False, stderr=args.json)
    libs = tflm_columns(given, con)
    if not libs:
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
            for label, lib in [("native", None), *libs.items()]:
                runtime = "native" if lib is None else "tflm"
                with con.status(f"building and profiling {name} ({label})…"):
                    try:
                        runs[label] = bench_runtime(m, args.board, runtime, lib)
                    except TinysmileError as exc:
                        if runtime == "native":
                            raise
                        # a model TFLite Micro cannot run (its prepare fails, say) is a
                        # row of the table, not the end of the run
                        runs[label] = {"runtime": runtime, "library": lib, "refused": str(exc)}
            results[name] = runs
            if args.per_layer:
                per_model[name] = layer_pairs(runs)
            if args.json:
                continue
            print_model(con, name, runs, profiles=not args.per_layer)
            if args.per_layer and per_model[name]:
                print_per_layer(con, name, per_model[name])
            elif args.per_layer:
                con.print(
                    f"{name}: no per-layer comparison (no tflm run, refused, or its layers differ)"
                )
    if args.json:
        for name, rows in per_model.items():
            results[name] = {**results[name], "per_layer": rows}
        print(json.dumps(results, indent=2))
        return 0
    if libs and len(results) > 1:
        print_totals(con, results, next(iter(libs)))
    if any(per_model.values()):
        print_worst(con, per_model, next(iter(libs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
