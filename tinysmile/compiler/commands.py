"""`tinysmile compile` and `tinysmile run-host` (never import TensorFlow)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import numpy as np

from tinysmile.errors import TinysmileError


def print_report(report: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"{report['model']} ({report['sha256'][:12]})")
    for col in ("layer", "op", "kind", "output", "MACs", "weights B", "storage", "live arena B"):
        table.add_column(col, justify="right" if col not in ("kind", "storage") else "left")
    for row in report["layers"]:
        storage = row["storage"] if row["offset"] is None else f"arena+{row['offset']}"
        table.add_row(
            str(row["layer"]),
            str(row["op"]),
            row["kind"],
            "x".join(map(str, row["output_shape"])),
            f"{row['macs']:,}",
            f"{row['weights_bytes']:,}",
            storage,
            f"{row['live_arena_bytes']:,}",
        )
    console.print(table)
    console.print(
        f"MACs {report['macs']:,} | weights {report['weights_bytes']:,} B | arena"
        f" {report['arena_bytes']:,} B incl. the input (peak at layer {report['peak_layer']},"
        f" {report['peak_layer_kind']}) | output buffer {report['output_buffer_bytes']:,} B"
    )
    for edge in report.get("stripped_edges", []):
        console.print(f"note: stripped float {edge}; the C API is int8")
    for note in report.get("notes", []):
        console.print(f"note: {note}")


def _model_path(model: str | None) -> Path:
    from tinysmile.bundle import load_bundle

    return load_bundle(model).model_path


def _default_prefix(path: Path) -> str:
    from tinysmile.compiler.clits import c_identifier

    stem = path.parent.name if path.name == "model.tflite" else path.stem
    return c_identifier(stem.lower())


# Shared with flash, verify and profile (tinysmile.device.commands imports it from here, so
# that a plain compile loads nothing of tinysmile.device).
core_option = click.option(
    "--core",
    "core_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="the Arduino core of a board built offline from local folders (SparkFun Apollo3 "
    "v1.x: framework-arduinoapollo3, or an Arduino IDE install's "
    "packages/SparkFun/hardware/apollo3/1.2.3); default: $TINYSMILE_APOLLO3_CORE",
)


@click.command("compile")
@click.argument("model", required=False)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    required=True,
    help="Folder for NAME_model.c and NAME_model.h (created if needed).",
)
@click.option("--prefix", help="Prefix of the files and C symbols (default: the model's name).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--perturb-layer",
    type=int,
    hidden=True,
    help="Test only: change one weight of this layer so parity checks must fail.",
)
@click.option(
    "--board",
    "board_id",
    default=None,
    help="Write a whole PlatformIO project for this board (boards/*.toml) into --out, "
    "after checking the model fits its flash and RAM.",
)
@click.option(
    "--runtime",
    type=click.Choice(["native", "tflm"]),
    default=None,
    help="With --board: native (generated C, the default) or tflm (TensorFlow Lite Micro).",
)
@click.option(
    "--mode",
    type=click.Choice(["harness", "app"]),
    default=None,
    help="With --board: harness (serial protocol, the default) or app (the smiling bot).",
)
@click.option(
    "--tflm-lib",
    "tflm_lib_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="With --board --runtime tflm: a local copy of TFLite Micro (a source tree made by its "
    "create_tflm_tree.py, or the Arduino library), used in place (default: $TINYSMILE_TFLM_LIB).",
)
@core_option
def compile_cmd(
    model: str | None,
    out_dir: str,
    prefix: str | None,
    as_json: bool,
    perturb_layer: int | None,
    board_id: str | None = None,
    runtime: str | None = None,
    mode: str | None = None,
    tflm_lib_dir: str | None = None,
    core_dir: str | None = None,
) -> None:
    """Compile a full-int8 MODEL (.tflite or bundle; default: the bundled smile model) to
    C: const weights, one static arena, one invoke function, no interpreter.

    Prints ops, MACs per layer and in total, weights bytes, peak arena bytes and the
    layer where the peak is. The generated code needs the kernels in tinysmile's
    firmware/kernels folder (the report lists them).

    With --board: a PlatformIO project for that board instead (platformio.ini, src/,
    include/), checked against the board's flash and RAM first."""
    from tinysmile.compiler.api import compile_model

    if board_id is not None:
        if prefix or perturb_layer is not None:
            raise TinysmileError("--prefix and --perturb-layer do not apply with --board")
        # Board projects are the device side's; imported only here, so a plain compile
        # never loads device code.
        from tinysmile.device.commands import compile_board_project

        compile_board_project(
            model,
            board_id,
            out_dir,
            runtime or "native",
            mode or "harness",
            as_json,
            tflm_lib_dir,
            core_dir,
        )
        return
    if runtime or mode or tflm_lib_dir or core_dir:
        raise TinysmileError(
            "--runtime, --mode, --tflm-lib and --core need --board (the project's board)"
        )
    path = _model_path(model)
    start = time.perf_counter()
    result = compile_model(
        path, out_dir, prefix=prefix or _default_prefix(path), perturb_layer=perturb_layer
    )
    report = dict(result.report)
    report["compile_seconds"] = round(time.perf_counter() - start, 3)
    report["files"] = [str(result.c_path), str(result.h_path)]
    report["kernel_sources"] = [str(s) for s in result.sources]
    report["include_dirs"] = [str(d) for d in result.include_dirs]
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        print_report(report)
        click.echo(f"wrote {result.c_path} and {result.h_path}")


def _load_inputs(path: str, size: int) -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TinysmileError(f"{path}: not a readable .npy file ({exc})") from None
    if x.dtype != np.int8:
        raise TinysmileError(f"{path}: inputs must be int8, got {x.dtype}")
    if x.ndim == 0 or x.size % size or x.reshape(x.shape[0], -1).shape[1] != size:
        raise TinysmileError(
            f"{path}: shape {list(x.shape)} is not a batch of inputs of {size} values each"
        )
    return x


@click.command("run-host")
@click.argument("model", required=False)
@click.option(
    "--inputs",
    "inputs_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="int8 .npy, batch first (each sample the model's input shape).",
)
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the int8 outputs (.npy, batch first).",
)
@click.option("--no-sanitize", is_flag=True, help="Build without AddressSanitizer/UBSan.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def run_host_cmd(
    model: str | None, inputs_path: str, output_path: str, no_sanitize: bool, as_json: bool
) -> int:
    """Compile MODEL to C, build it with the host C compiler, run it on every input, write
    the outputs, and check them byte for byte against LiteRT's reference kernels.

    Exit status 0 when every output byte matches, 1 when any differs."""
    import tempfile

    from tinysmile.compiler.hostrun import compile_and_build
    from tinysmile.compiler.oracle import litert_reference

    path = _model_path(model)
    with tempfile.TemporaryDirectory(prefix="tinysmile-run-host-") as work:
        binary = compile_and_build(
            path, work, prefix=_default_prefix(path), sanitize=not no_sanitize
        )
        g = binary.compiled.program.graph
        x = _load_inputs(inputs_path, g.input.size)
        n = x.shape[0]
        got = binary.run(x.reshape(n, -1))
    out = got.reshape(n, *g.output.shape)
    np.save(output_path, out)
    x_in = binary.compiled.program.graph.input
    quant_in = (x_in.scale, x_in.zero_point) if binary.compiled.program.stripped else None
    y_out = g.output
    quant_out = (y_out.scale, y_out.zero_point) if binary.compiled.program.stripped else None
    expected = litert_reference(path, x.reshape(n, *g.input.shape), quant_in, quant_out)
    expected = expected.reshape(n, -1)
    mismatched = np.nonzero((expected != got).any(axis=1))[0]
    result = {
        "samples": int(n),
        "output": output_path,
        "matching_samples": int(n - len(mismatched)),
        "mismatched_samples": mismatched.tolist()[:20],
        "bit_exact": bool(len(mismatched) == 0),
        "oracle": "LiteRT BUILTIN_REF",
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        verdict = "bit-exact" if result["bit_exact"] else f"MISMATCH on {len(mismatched)} samples"
        click.echo(f"{n} samples -> {output_path}: {verdict} against LiteRT (reference kernels)")
    return 0 if result["bit_exact"] else 1
