"""Device benchmark on the emulated Cortex-M4: per model, instructions per inference,
MACs per instruction, RAM (arena, stack, .data, .bss), flash (.text, .rodata) and the
per-layer breakdown. Prints tables; not a timed test.

    python bench/bench_device.py [MODEL.tflite|BUNDLE ...] [--models default,person,...]
                                 [--board qemu-cortex-m4] [--json]

--models picks models by name: `default` (the bundled model) and the models of
tests/models.py (NAMED below: issue 10's person detector, mini-Xception and DS-CNN among
them; TensorFlow builds each once, then it is cached). Without models it uses the
compiler's test models smile_like and mobilenet_block and the bundled default model.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent


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
        names.append("default")
    return named_models(names, tmp)


def bench_model(model: Path, board_id: str) -> dict:
    from tinysmile.boards import load_board
    from tinysmile.bundle import load_bundle
    from tinysmile.device import emulator
    from tinysmile.device.profile import profile
    from tinysmile.device.project import memory_summary
    from tinysmile.device.session import build, client_for

    board = load_board(board_id)
    bundle = load_bundle(model)
    project = build(bundle, board)
    mem = memory_summary(project)
    st = emulator.start(board, project.elf, project.model_sha256, register=False)
    try:
        client = client_for(board, st.port)
        try:
            client.handshake()
            prof = profile(client, board, project.report)
        finally:
            client.close()
    finally:
        emulator.kill(st)
    return {"model": bundle.name, "board": board.id, "memory": mem, "profile": prof.to_dict()}


def print_result(con: Console, res: dict) -> None:
    from tinysmile.device.commands import profile_table

    prof, mem = res["profile"], res["memory"]
    unit = prof["unit"]
    t = Table(title=f"{res['model']} on {res['board']}", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row(f"{unit} / inference", f"{prof['total']:,}")
    t.add_row(f"MACs / {unit[:-1]}", f"{prof['macs_per_' + unit[:-1]]:.3f}")
    t.add_row("MACs", f"{prof['macs']:,}")
    t.add_row("RAM: arena", f"{mem['ram_arena']:,} B")
    t.add_row("RAM: stack (reserved)", f"{mem['ram_stack']:,} B")
    t.add_row("RAM: .data", f"{mem['ram_data']:,} B")
    t.add_row("RAM: .bss (arena, buffers)", f"{mem['ram_bss']:,} B")
    t.add_row("RAM: total", f"{mem['ram_total']:,} B")
    t.add_row("flash: .text", f"{mem['flash_text']:,} B")
    t.add_row("flash: .rodata (weights in it)", f"{mem['flash_rodata']:,} B")
    t.add_row("flash: total", f"{mem['flash_total']:,} B")
    con.print(t)
    con.print(profile_table({**prof, "model": res["model"], "board": res["board"]}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument(
        "--models", dest="models_by_name", default=None, help="comma-separated names (see NAMED)"
    )
    ap.add_argument("--board", default="qemu-cortex-m4")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    con = Console(highlight=False)
    with tempfile.TemporaryDirectory() as tmp:
        models = list(args.models)
        if args.models_by_name:
            models += named_models(args.models_by_name.split(","), Path(tmp))
        models = models or default_models(Path(tmp))
        results = []
        for m in models:
            with con.status(f"building and profiling {m.name}…"):
                results.append(bench_model(m, args.board))
            if not args.json:
                print_result(con, results[-1])
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
