"""`tinysmile demo`: the README's main job on the emulated board, end to end.

Compile the default smile model, build and flash it to the emulated Cortex-M4, verify 32
inputs byte for byte against LiteRT's reference kernels, and print RAM, flash,
instructions per inference and the parity verdict. When the bundled default model is
absent (a fresh checkout before training), an example model is built with the test
helper (tests/models.py, which needs the `train` extra) and used instead.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import click

from tinysmile.bundle import default_bundle_path, write_bundle
from tinysmile.errors import TinysmileError

SAMPLES = 32


def _example_model(log) -> Path:
    from tinysmile.device.emulator import state_dir

    helper = Path(__file__).resolve().parent.parent / "tests" / "models.py"
    if not helper.is_file():
        raise TinysmileError(
            "the bundled default model is missing and so is the test helper "
            "that builds an example; pass a model to `tinysmile flash`"
        )
    log("no bundled default model yet: building the example smile-like CNN (TensorFlow)")
    spec = importlib.util.spec_from_file_location("tinysmile_test_models", helper)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    try:
        model = mod.build_smile_like()
    except ImportError as exc:
        raise TinysmileError(
            f"building the example model needs TensorFlow ({exc}): run scripts/setup.sh"
        ) from None
    bundle = write_bundle(
        state_dir() / "example_smile",
        model,
        {
            "name": "example_smile",
            "labels": ["no_smile", "smile"],
            "provenance": {
                "source": "tests/models.py:build_smile_like",
                "weights": "random (example only)",
            },
        },
    )
    return bundle.path


def run_demo(log, progress=None) -> dict:
    from tinysmile.boards import load_board
    from tinysmile.device import emulator
    from tinysmile.device.commands import flash, run_verify

    board = load_board(None)
    if not board.emulated:
        raise TinysmileError(f"the default board {board.id} is not an emulated board")
    model = default_bundle_path()
    if not (model / "model.tflite").is_file():
        model = _example_model(log)
    flashed = flash(str(model), board.id, log=log)
    try:
        res = run_verify(
            str(model), board.id, flashed.get("port"), SAMPLES, None, log=log, progress=progress
        )
    finally:
        emulator.stop(board.id)
    return {"flash": flashed, "verify": res}


@click.command("demo")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def demo_cmd(as_json: bool) -> int:
    """Compile the default smile model for the emulated Cortex-M4, flash it, verify 32
    inputs bit for bit and print RAM, flash, instructions per inference and parity."""
    from rich.console import Console
    from rich.progress import Progress

    from tinysmile.device.commands import describe_mismatch, fmt_bytes

    con = Console(stderr=True, highlight=False)
    with Progress(console=con, transient=True) as bar:
        task = bar.add_task("starting", total=SAMPLES)
        out = run_demo(
            log=lambda m: bar.update(task, description=m),
            progress=lambda i, n: bar.update(task, completed=i, description="verifying"),
        )
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return 0 if out["verify"]["ok"] else 1
    f, v = out["flash"], out["verify"]
    mem = f["memory"]
    click.echo(f"model      {f['model']} (sha256 {f['sha256'][:16]}…)")
    click.echo(f"board      {f['board']}")
    click.echo(
        f"RAM        {fmt_bytes(mem['ram_total'])}  (arena {fmt_bytes(mem['ram_arena'])}, "
        f"stack {fmt_bytes(mem['ram_stack'])}, .data {fmt_bytes(mem['ram_data'])}, "
        f".bss {fmt_bytes(mem['ram_bss'])})"
    )
    click.echo(
        f"flash      {fmt_bytes(mem['flash_total'])}  (.text {fmt_bytes(mem['flash_text'])}, "
        f".rodata {fmt_bytes(mem['flash_rodata'])}; weights {fmt_bytes(mem['weights_bytes'])})"
    )
    click.echo(f"per inference  {v['per_inference']:,} {v['unit']}")
    verdict = "PASS" if v["ok"] else "FAIL"
    click.echo(
        f"parity     {verdict}: {v['matched']}/{v['samples']} outputs bit-exact with "
        f"LiteRT (BUILTIN_REF)"
    )
    for m in v["mismatches"][:5]:
        click.echo("  " + describe_mismatch(m))
    return 0 if v["ok"] else 1
