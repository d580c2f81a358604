"""`tinysmile flash / verify / profile / stop`. None of these import TensorFlow."""

from __future__ import annotations

import json
from typing import Any

import click

# --core is compile's too; its one definition lives with the compiler's commands, which a
# plain compile loads without any of tinysmile.device.
from tinysmile.compiler.commands import core_option
from tinysmile.errors import TinysmileError


def _console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _load(model: str | None, board_id: str | None):
    from tinysmile.boards import load_board
    from tinysmile.bundle import load_bundle

    return load_bundle(model), load_board(board_id)


def _compile_only(bundle) -> Any:
    """The host's view of the model (program and report), compiled in memory: verify and
    profile need no C files, so none are written and nothing is left behind."""
    from tinysmile.compiler.api import compile_in_memory

    return compile_in_memory(bundle.model_path)


def fmt_bytes(n: int) -> str:
    return f"{n:,} B" if n < 10 * 1024 else f"{n / 1024:,.1f} KiB"


def flash(
    model: str | None,
    board_id: str | None,
    log=print,
    runtime: str = "native",
    mode: str = "harness",
    port: str | None = None,
    tflm_lib_dir: str | None = None,
    detector: str | None = None,
    core_dir: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """detector: the app's face finder (a bundle folder, bundled or none; default: the
    bundled one on boards with a camera frame); core_dir: the Arduino core of a board built
    from local folders; dry_run: build and say how it would upload, touching no port."""
    from tinysmile.device import emulator, localpio
    from tinysmile.device.bot import resolve_detector
    from tinysmile.device.pio import memory_summary, run_pio
    from tinysmile.device.session import build

    bundle, board = _load(model, board_id)
    if mode != "app" and detector not in (None, "none"):
        raise TinysmileError("--detector is for the smiling-bot app: add --mode app")
    finder = resolve_detector(detector, board) if mode == "app" else None
    if localpio.is_local(board):
        return _flash_local(
            bundle, board, runtime, mode, port, log, tflm_lib_dir, finder, core_dir, dry_run
        )
    if dry_run:
        raise TinysmileError(
            f"--dry-run is for boards tinysmile builds and uploads itself (a [local] table in "
            f"the board file); {board.id} uploads through PlatformIO"
        )
    if core_dir:
        raise TinysmileError(f"--core is for boards built from a local core; {board.id} is not")
    if not board.emulated:
        return _flash_real(bundle, board, runtime, mode, port, log, tflm_lib_dir, finder)
    project = build(
        bundle,
        board,
        log=log,
        mode=mode,
        runtime=runtime,
        tflm_lib_dir=tflm_lib_dir,
        finder=finder,
    )
    log("uploading (booting the emulator)")
    run_pio(project, "upload")
    mem = memory_summary(project)
    out: dict[str, Any] = {
        **_flashed(bundle, board, runtime, mode, finder, project),
        "elf": str(project.elf),
        "memory": mem,
        "notes": project.notes,
    }
    st = emulator.read_state(board.id)
    if st is None:
        raise TinysmileError(
            f"the emulator did not stay up after upload; see {project.dir / 'pio-upload.log'}"
        )
    out.update(port=st.port, pid=st.pid)
    return out


def _flashed(bundle, board, runtime: str, mode: str, finder, project) -> dict[str, Any]:
    """What every flash result starts with: board, model, runtime, mode, finder, project."""
    return {
        "board": board.id,
        "model": bundle.name,
        "sha256": bundle.model_hash(),
        "runtime": runtime,
        "mode": mode,
        "detector": finder.name if finder else None,
        "project": str(project.dir),
    }


def _generate(bundle, board, runtime: str, mode: str, log, tflm_lib_dir, finder, core_dir=None):
    """A real board's project in the state folder, one per board, model, runtime, mode and
    finder (the budget is checked here: nothing is built for a model that does not fit)."""
    from tinysmile.device.project import finder_digest, generate_project
    from tinysmile.device.session import project_dir

    log(f"generating the {runtime} {mode} project for {board.id}")
    key = f"{runtime}:{mode}" + (f":finder-{finder_digest(finder)}" if finder else "")
    return generate_project(
        bundle,
        board,
        project_dir(board, bundle, key=key),
        runtime,
        mode,
        tflm_lib_dir=tflm_lib_dir,
        finder=finder,
        core_dir=core_dir,
    )


def _flash_real(
    bundle,
    board,
    runtime: str,
    mode: str,
    port: str | None,
    log,
    tflm_lib_dir: str | None,
    finder=None,
) -> dict[str, Any]:
    """Budget check and project first (nothing is built for a model that does not fit),
    then the port by VID:PID, then `pio run -t upload`."""
    from tinysmile.device.pio import run_pio

    project = _generate(bundle, board, runtime, mode, log, tflm_lib_dir, finder)
    port = _find_port(board, port)
    log(f"building and uploading with PlatformIO to {port}")
    run_pio(project, "upload", upload_port=port)
    return {
        **_flashed(bundle, board, runtime, mode, finder, project),
        "port": port,
        "budget": project.budget.to_dict(),
        "notes": project.notes,
    }


def _find_port(board, port: str | None) -> str:
    from tinysmile.device.transport import find_ports

    if port is not None:
        return port
    ids = list(board.serial.get("usb_ids", []))
    found = find_ports(ids)
    if not found:
        raise TinysmileError(
            f"no {board.id} found on USB (looked for {', '.join(ids) or 'no VID:PID'}): "
            "connect it, or pass --port"
        )
    if len(found) > 1:
        raise TinysmileError(f"several {board.id} boards found ({', '.join(found)}); pass --port")
    return found[0]


def build_local(
    bundle, board, runtime: str, mode: str, log, tflm_lib_dir=None, finder=None, core_dir=None
):
    """A board built offline from local folders: generate, link with PlatformIO, and check
    the linker's sizes against the board. Returns (project, the linker's memory summary)."""
    from tinysmile.device.budget import check_linked
    from tinysmile.device.pio import memory_summary, run_pio

    project = _generate(bundle, board, runtime, mode, log, tflm_lib_dir, finder, core_dir)
    log(f"linking with PlatformIO against {project.local.core}")
    run_pio(project)
    mem = memory_summary(project)
    check_linked(board, mem, bundle.name)
    return project, mem


NO_PORT = "PORT"  # what a dry run's upload command names when no board is attached


def _flash_local(
    bundle, board, runtime, mode, port, log, tflm_lib_dir, finder, core_dir, dry_run
) -> dict[str, Any]:
    from tinysmile.device import upload

    try:
        port = _find_port(board, port)  # before a build that takes a while
    except TinysmileError:
        if not dry_run:
            raise
        # A dry run touches no port: with no board attached, the command names PORT.
        port = None
        log(f"no {board.id} on USB: the upload command names {NO_PORT} (pass --port)")
    project, mem = build_local(bundle, board, runtime, mode, log, tflm_lib_dir, finder, core_dir)
    cmd = upload.command(board, project.local.core, project.bin, port or NO_PORT)
    out = {
        **_flashed(bundle, board, runtime, mode, finder, project),
        "elf": str(project.elf),
        "bin": str(project.bin),
        # The linker's figures (the estimate it replaces is under "budget").
        "flash_bytes": mem["flash_total"],
        "ram_bytes": mem["ram_total"],
        "memory": mem,
        "budget": project.budget.to_dict(),
        "upload": upload.describe(board, port),
        "upload_command": cmd,
        "port": port,
        "dry_run": dry_run,
        "notes": project.notes,
    }
    if not dry_run:
        log(f"uploading to {port} ({board['upload']['protocol']})")
        upload.run(board, cmd, port, project.dir / "upload.log")
    return out


def print_budget(budget: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(
        title=f"{budget['board']}: {budget['runtime']} runtime, {budget['mode']} mode (bytes)"
    )
    for col in ("memory", "part", "bytes"):
        table.add_column(col, justify="right" if col == "bytes" else "left")
    for memory in ("flash", "ram"):
        for part, n in budget[memory].items():
            table.add_row(memory, part, f"{n:,}")
        table.add_row(
            memory,
            f"total of {budget[memory + '_bytes']:,}",
            f"{budget[memory + '_total']:,} ({budget[memory + '_free']:,} free)",
            style="bold",
        )
    console.print(table)


def compile_board_project(
    model: str | None,
    board_id: str,
    out_dir: str,
    runtime: str,
    mode: str,
    as_json: bool,
    tflm_lib_dir: str | None = None,
    core_dir: str | None = None,
) -> dict:
    """`tinysmile compile --board`: the board's whole PlatformIO project in out_dir, after
    checking the model fits (the compiler hands over here: projects are the device side's).
    core_dir: --core, for boards built from a local core (else their variable)."""
    from tinysmile.device import localpio
    from tinysmile.device.project import generate_project

    bundle, board = _load(model, board_id)
    if core_dir and not localpio.is_local(board):
        raise TinysmileError(f"--core is for boards built from a local core; {board.id} is not")
    project = generate_project(
        bundle, board, out_dir, runtime, mode, tflm_lib_dir=tflm_lib_dir, core_dir=core_dir
    )
    budget = project.budget.to_dict()
    result = {
        "board": board.id,
        "model": bundle.name,
        "sha256": bundle.model_hash(),
        "runtime": runtime,
        "mode": mode,
        "project": str(project.dir),
        "platformio_ini": str(project.dir / "platformio.ini"),
        "budget": budget,
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        print_budget(budget)
        lib = f" --tflm-lib {tflm_lib_dir}" if tflm_lib_dir else ""
        lib += f" --core {core_dir}" if core_dir else ""
        click.echo(
            f"wrote the PlatformIO project {project.dir} (build: pio run -d {project.dir}; "
            f"flash: tinysmile flash --board {board.id} --runtime {runtime} --mode {mode}{lib})"
        )
    return result


_RUNTIME = click.option(
    "--runtime",
    type=click.Choice(["native", "tflm"]),
    default="native",
    show_default=True,
    help="native: tinysmile's generated C; tflm: the model on TensorFlow Lite Micro",
)
_MODE = click.option(
    "--mode",
    type=click.Choice(["harness", "app"]),
    default="harness",
    show_default=True,
    help="harness: the serial protocol for verify/profile; app: the smiling bot",
)


tflm_lib_option = click.option(
    "--tflm-lib",
    "tflm_lib_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="a local copy of TFLite Micro for --runtime tflm, used in place: a source tree made "
    "by its create_tflm_tree.py, or the Arduino library (default: $TINYSMILE_TFLM_LIB; real "
    "boards without it use their registry dependency)",
)

detector_option = click.option(
    "--detector",
    default=None,
    help="the app's face finder: a finder bundle folder, 'bundled' (shipped with tinysmile) "
    "or 'none' (the camera frame's centre square). Default: bundled on boards with a camera "
    "frame, when this tinysmile ships one",
)

no_board_option = click.option(
    "--no-board",
    is_flag=True,
    help="no board: link the firmware for --board and run its model entry on a Cortex-M4 "
    "instruction-set emulator (boards built from local folders)",
)


board_option = click.option(
    "--board",
    "board_id",
    default=None,
    help="a board from boards/*.toml (default: the one marked default, the emulator)",
)


@click.command("flash")
@click.argument("model", required=False)
@board_option
@_RUNTIME
@_MODE
@tflm_lib_option
@detector_option
@click.option("--port", default=None, help="serial port of a real board (default: by USB VID:PID)")
@core_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="build (link) the firmware and print how it would be uploaded; no port is opened"
    " (with no board attached, the upload command names PORT)",
)
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def flash_cmd(
    model: str | None,
    board_id: str,
    runtime: str,
    mode: str,
    tflm_lib_dir: str | None,
    detector: str | None,
    port: str | None,
    core_dir: str | None,
    dry_run: bool,
    as_json: bool,
) -> int:
    """Compile MODEL, check it fits, build the firmware with PlatformIO and flash it (the
    emulated board: boot QEMU with its UART on a pseudo-terminal; a real board: upload
    through the serial port found by its USB VID:PID)."""
    con = _console()
    with con.status("flashing…") as status:
        res = flash(
            model,
            board_id,
            lambda m: status.update(m),
            runtime,
            mode,
            port,
            tflm_lib_dir,
            detector,
            core_dir,
            dry_run,
        )
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return 0
    _warn_differences(res["notes"])
    if "upload_command" in res:
        import shlex

        what = "would upload" if res["dry_run"] else "uploaded"
        up = res["upload"]
        click.echo(
            f"linked {res['model']} ({res['runtime']}, {res['mode']}) for {res['board']}: flash "
            f"{res['flash_bytes']:,} B, RAM {res['ram_bytes']:,} B (the linker's figures)\n"
            f"elf {res['elf']}\nbin {res['bin']}\n{what} with {up['protocol']} at "
            f"{up['address']} on {up['port']}: {shlex.join(res['upload_command'])}"
        )
    elif "memory" in res:
        mem = res["memory"]
        con.print(
            f"flashed {res['model']} to {res['board']}: RAM {fmt_bytes(mem['ram_total'])} "
            f"(arena {fmt_bytes(mem['ram_arena'])}), flash {fmt_bytes(mem['flash_total'])}"
        )
        click.echo(f"emulator pid {res['pid']}, serial port {res['port']}")
    else:
        b = res["budget"]
        con.print(
            f"flashed {res['model']} ({res['runtime']}, {res['mode']}) to {res['board']} on "
            f"{res['port']}: budget RAM {fmt_bytes(b['ram_total'])} of "
            f"{fmt_bytes(b['ram_bytes'])}, flash {fmt_bytes(b['flash_total'])} of "
            f"{fmt_bytes(b['flash_bytes'])}"
        )
    return 0


def _warn_differences(notes: list[str]) -> None:
    for note in notes:
        click.echo(f"warning: TFLite Micro will not match LiteRT here: {note}", err=True)


def run_verify(
    model: str | None,
    board_id: str | None,
    port: str | None,
    samples: int,
    data: str | None,
    seed: int = 0,
    log=None,
    progress=None,
    perturb_layer: int | None = None,
    runtime: str = "native",
    tflm_lib_dir: str | None = None,
    no_board: bool = False,
    core_dir: str | None = None,
) -> dict[str, Any]:
    import numpy as np

    from tinysmile.device.session import connect
    from tinysmile.device.verify import image_inputs, random_inputs, verify, verify_linked

    if samples < 1:
        raise TinysmileError("--samples must be at least 1")
    bundle, board = _load(model, board_id)
    host = _compile_only(bundle)
    report = host.report
    shape = tuple(report["input"]["shape"])
    if data:
        inputs = image_inputs(
            bundle, data, samples, report["input"]["scale"], report["input"]["zero_point"], shape
        )
    else:
        inputs = random_inputs(shape, samples, seed)
    if no_board:
        project = _linked_harness(bundle, board, runtime, log, tflm_lib_dir, core_dir, port)
        res = verify_linked(project.elf, bundle.model_path, report, inputs, progress=progress)
        return {
            "board": board.id,
            "model": bundle.name,
            "sha256": bundle.model_hash(),
            "port": None,
            "elf": str(project.elf),
            "inputs": "images from " + str(data) if data else f"random int8 (seed {seed})",
            "runtime": runtime,
            "emulator": "unicorn (Cortex-M4, the linked ELF's model entry)",
            "unit": "instructions",
            "per_inference": None,
            "notes": _runtime_notes(host.program.graph, runtime, tflm_lib_dir),
            **res.to_dict(),
        }
    with connect(
        board,
        bundle,
        port,
        log=log,
        perturb_layer=perturb_layer,
        runtime=runtime,
        tflm_lib_dir=tflm_lib_dir,
    ) as conn:
        res = verify(
            conn.client, bundle.model_path, host.program, report, inputs, progress=progress
        )
        hello = conn.client.hello
    counts = [board.count_between(a, b) for a, b in res.stamps]
    return {
        "board": board.id,
        "model": bundle.name,
        "sha256": bundle.model_hash(),
        "port": conn.port,
        "inputs": "images from " + str(data) if data else f"random int8 (seed {seed})",
        "runtime": runtime,
        "arena_bytes": hello.arena_size if hello else None,
        "arena_used_bytes": hello.arena_used if hello else None,
        "unit": board.counter_unit,
        "per_inference": int(np.median(counts)) if counts else None,
        "notes": _runtime_notes(host.program.graph, runtime, tflm_lib_dir),
        **res.to_dict(),
    }


def _linked_harness(bundle, board, runtime, log, tflm_lib_dir, core_dir, port):
    """--no-board: the harness firmware linked for this board (built if needed)."""
    from tinysmile.device import localpio

    if port is not None:
        raise TinysmileError("--no-board runs the linked firmware on an emulator: drop --port")
    if not localpio.is_local(board):
        raise TinysmileError(
            f"--no-board checks firmware linked for a board tinysmile builds offline (a "
            f"[local] table in its board file); {board.id} is not one"
        )
    project, _mem = build_local(
        bundle, board, runtime, "harness", log or (lambda m: None), tflm_lib_dir, None, core_dir
    )
    return project


def _runtime_notes(graph, runtime: str, tflm_lib_dir: str | None) -> list[str]:
    from tinysmile.device import tflm_lib

    if runtime != "tflm":
        return []
    return tflm_lib.known_differences(graph, tflm_lib.locate(tflm_lib_dir))


def describe_mismatch(m: dict[str, Any], unit: str = "") -> str:
    s = (
        f"sample {m['sample']}: output{m['output_index']} device {m['device']} host "
        f"{m['host']} ({m['differing']} output values differ)"
    )
    fl = m.get("first_layer")
    if fl:
        s += (
            f"; first differing layer: {fl['layer']} ({fl['kind']}), element "
            f"{fl['index']} of {fl['shape']}: device {fl['device']}, host {fl['host']} "
            f"({fl['differing']}/{fl['size']} values differ)"
        )
    elif m.get("note"):
        s += f"; {m['note']}"
    return s


@click.command("verify")
@click.argument("model", required=False)
@board_option
@click.option("--port", default=None, help="serial port (default: the emulator / USB autodetect)")
@click.option("--samples", default=32, show_default=True, help="how many inputs")
@click.option(
    "--data",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="folder of images to use instead of random inputs",
)
@click.option("--seed", default=0, show_default=True, help="seed of the random inputs")
@_RUNTIME
@tflm_lib_option
@no_board_option
@core_option
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def verify_cmd(
    model, board_id, port, samples, data, seed, runtime, tflm_lib_dir, no_board, core_dir, as_json
) -> int:
    """Send inputs to the device and compare every output byte with LiteRT's reference
    kernels; on a mismatch, name the first layer that differs. Exit 0 only if all match."""
    from rich.progress import Progress

    con = _console()
    with Progress(console=con, transient=True) as bar:
        task = bar.add_task("connecting", total=samples)
        res = run_verify(
            model,
            board_id,
            port,
            samples,
            data,
            seed,
            log=lambda m: bar.update(task, description=m),
            progress=lambda i, n: bar.update(task, completed=i, description="verifying"),
            runtime=runtime,
            tflm_lib_dir=tflm_lib_dir,
            no_board=no_board,
            core_dir=core_dir,
        )
    if as_json:
        click.echo(json.dumps(res, indent=2))
    else:
        verdict = "PASS" if res["ok"] else "FAIL"
        where = res["board"] if not no_board else f"{res['board']}'s linked firmware, emulated"
        count = (
            f"; {res['per_inference']:,} {res['unit']} per inference"
            if res["per_inference"] is not None
            else ""
        )
        click.echo(
            f"{verdict}: {res['matched']}/{res['samples']} outputs bit-exact "
            f"({res['model']} on {where}, {res['inputs']}){count}"
        )
        for m in res["mismatches"][:5]:
            click.echo("  " + describe_mismatch(m))
        _warn_differences(res["notes"])
    return 0 if res["ok"] else 1


def run_profile(
    model: str | None,
    board_id: str | None,
    port: str | None = None,
    log=None,
    runs: int = 1,
    runtime: str = "native",
    tflm_lib_dir: str | None = None,
    no_board: bool = False,
    core_dir: str | None = None,
    emulated: bool = False,
) -> dict[str, Any]:
    """emulated (with no_board): also profile the same model and runtime on the emulated
    board of the same core, under "emulated"."""
    from tinysmile.device.profile import profile
    from tinysmile.device.session import connect

    bundle, board = _load(model, board_id)
    if emulated and not no_board:
        raise TinysmileError("--emulated sets the emulated board's figure beside --no-board's")
    host = _compile_only(bundle)
    if no_board:
        from tinysmile.device.profile import profile_linked

        twin = _emulated_twin(board) if emulated else None
        project = _linked_harness(bundle, board, runtime, log, tflm_lib_dir, core_dir, port)
        out = profile_linked(project.elf, board, host.report)
        out.update(board=board.id, model=bundle.name, sha256=bundle.model_hash(), runtime=runtime)
        if twin is not None:
            emu = run_profile(model, twin.id, log=log, runtime=runtime, tflm_lib_dir=tflm_lib_dir)
            out["emulated"] = {
                "board": twin.id,
                "instructions": emu["total"],
                "unit": emu["unit"],
                "ratio": emu["total"] / out["instructions"],
                "counted": "QEMU -icount between the INFER stamps (the call around the "
                "model included), the emulated board's own build of the same sources",
            }
        return out
    with connect(board, bundle, port, log=log, runtime=runtime, tflm_lib_dir=tflm_lib_dir) as conn:
        results = [profile(conn.client, board, host.report, runtime=runtime) for _ in range(runs)]
        hello = conn.client.hello
    out = results[0].to_dict()
    out.update(
        board=board.id,
        model=bundle.name,
        sha256=bundle.model_hash(),
        runtime=runtime,
        arena_bytes=hello.arena_size if hello else None,
        arena_used_bytes=hello.arena_used if hello else None,
    )
    if runs > 1:
        out["repeat_totals"] = [r.total for r in results]
    return out


def _emulated_twin(board):
    """The emulated board with the same CPU core as `board` (one clear line if none)."""
    from tinysmile.boards import list_boards, load_board

    for board_id in list_boards():
        other = load_board(board_id)
        if other.emulated and other["core"] == board["core"]:
            return other
    raise TinysmileError(f"no emulated board has {board.id}'s core ({board['core']})")


def profile_table(res: dict[str, Any]):
    from rich.table import Table

    unit = res["unit"]
    t = Table(title=f"{res['model']} on {res['board']} ({unit})")
    for col in ("layer", "kind", "variant", unit, "MACs", f"MACs/{unit[:-1]}", "share"):
        t.add_column(col, justify="left" if col in ("kind", "variant") else "right")
    key = "macs_per_" + unit[:-1]
    hooked = sum(layer["count"] for layer in res["layers"]) or 1
    for layer in res["layers"]:
        t.add_row(
            str(layer["layer"]),
            layer["kind"],
            layer.get("variant", ""),
            f"{layer['count']:,}",
            f"{layer['macs']:,}",
            f"{layer[key]:.3f}",
            f"{100 * layer['count'] / hooked:.1f}%",
        )
    t.add_row(
        "",
        "total",
        "",
        f"{res['total']:,}",
        f"{res['macs']:,}",
        f"{res[key]:.3f}",
        "",
        style="bold",
    )
    return t


@click.command("profile")
@click.argument("model", required=False)
@board_option
@click.option("--port", default=None)
@_RUNTIME
@tflm_lib_option
@no_board_option
@core_option
@click.option(
    "--emulated",
    is_flag=True,
    help="with --no-board: also profile the same model on the emulated board of the same "
    "core (QEMU, builds and boots it) and print its count beside",
)
@click.option("--json", "as_json", is_flag=True)
def profile_cmd(
    model, board_id, port, runtime, tflm_lib_dir, no_board, core_dir, emulated, as_json
) -> int:
    """Per-layer and total instruction counts (cycles on real boards), MACs per layer. On
    the tflm runtime the layers are TFLite Micro's operators, timed through its profiler."""
    from rich.console import Console

    con = _console()
    with con.status("profiling…") as status:
        res = run_profile(
            model,
            board_id,
            port,
            log=lambda m: status.update(m),
            runtime=runtime,
            tflm_lib_dir=tflm_lib_dir,
            no_board=no_board,
            core_dir=core_dir,
            emulated=emulated,
        )
    if as_json:
        click.echo(json.dumps(res, indent=2))
    elif no_board:
        click.echo(
            f"{res['model']} ({res['runtime']}) as linked for {res['board']}: "
            f"{res['instructions']:,} instructions per inference (Cortex-M4 instruction-set "
            f"emulator); estimated {res['cycles_estimate']:,} cycles = "
            f"{res['ms_estimate']:.1f} ms at {res['clock_hz'] / 1e6:g} MHz"
        )
        mix = ", ".join(f"{k} {v:,}" for k, v in res["mix"].items())
        click.echo(f"instruction mix: {mix}")
        click.echo("an estimate, assuming: " + "; ".join(res["assumptions"]))
        emu = res.get("emulated")
        if emu:
            click.echo(
                f"beside it, the emulated board {emu['board']}: {emu['instructions']:,} "
                f"{emu['unit']} per inference ({emu['ratio']:.3f}x; {emu['counted']})"
            )
    else:
        Console(highlight=False).print(profile_table(res))
        click.echo(
            f"per-layer counts include the profiling hook; total is one plain "
            f"inference: {res['total']:,} {res['unit']}"
        )
    return 0


@click.command("stop")
@click.option("--board", "board_id", default=None, help="only this board's emulator")
def stop_cmd(board_id: str | None) -> int:
    """End the emulator started by `tinysmile flash`."""
    from tinysmile.device import emulator

    stopped = emulator.stop(board_id)
    if not stopped:
        click.echo("no emulator running")
    for st in stopped:
        click.echo(f"stopped the {st.board} emulator (pid {st.pid})")
    return 0


@click.command("frame")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--model", default=None, help="bundle folder (default: the bundled smile model)")
@board_option
@click.option("--port", default=None, help="serial port (default: the emulator / USB autodetect)")
@detector_option
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def frame_cmd(images, model, board_id, port, detector, as_json) -> int:
    """Send IMAGES as whole camera frames (grayscale, letterboxed to the board's camera size)
    to a board running the smiling-bot app (`flash --mode app`): it finds the face, crops
    and decides. Prints its box and decision next to the host's (the same C, built for the
    host). --detector: what the app was flashed with. Exit 0 only if every box, score and
    decision equals the host's."""
    from tinysmile.device.frames import run_frames

    con = _console()
    with con.status("sending frames…") as status:
        res = run_frames(
            model, board_id, list(images), port, log=lambda m: status.update(m), detector=detector
        )
    if as_json:
        click.echo(json.dumps(res, indent=2))
    else:
        for r in res["frames"]:
            c = r["counts"]
            if r["device_face"] is None:
                what = f"no face (finder score {r['device_finder_score']}), LED off"
            else:
                verdict = "smile" if r["device_smile"] else "no smile"
                what = (
                    f"face {r['device_face']}: {verdict}, LED {'on' if r['led'] else 'off'} "
                    f"(score {r['device_score']}, host {r['host_score']}, threshold "
                    f"{res['threshold_int8']})"
                )
            click.echo(
                f"{r['image']}: {what}; {res['unit']} detect {c['detect']:,}, crop "
                f"{c['crop']:,}, classify {c['classify']:,}"
                f"{'' if r['same'] else '  DIFFERS FROM THE HOST'}"
            )
    return 0 if res["ok"] else 1
