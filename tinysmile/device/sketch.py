"""PlatformIO projects for boards programmed through an Arduino core (real boards).

Layout::

    PROJECT/
      platformio.ini      templates/arduino/platformio.ini.j2 (platform/board/framework and
                          lib_deps from boards/<id>.toml)
      tsm_flags.py        strict warnings for tinysmile's own C only
      tinysmile.json      board, runtime, mode, model hash and the budget
      include/            every header: firmware/, the model's, TFLM's model_data/model_ops
      src/main.cpp        the sketch (harness or app; native or TFLite Micro)
      src/tsm/            firmware/ sources: protocol, harness or app, kernels, Arduino port,
                          the glue binding them to this model
      src/model/          the model: generated C (native) or the aligned C array (tflm)

The budget is checked before anything is written: a model that does not fit is refused
with the numbers.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinysmile import __version__
from tinysmile.boards import Board
from tinysmile.bundle import Bundle
from tinysmile.device.budget import (
    MODES,
    PROTO_OVERHEAD,
    RUNTIMES,
    Budget,
    check_budget,
    native_budget,
    tflm_budget,
)
from tinysmile.device.project import ENV_NAME, PREFIX, Project, c_string
from tinysmile.errors import TinysmileError
from tinysmile.resources import firmware_dir
from tinysmile.templating import render, render_to

TFLM_PREFIX = "tsm_tflm"  # the TFLM binding's symbols: tsm_tflm_info, tsm_tflm_invoke
STRICT_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
STRICT_DIRS = ["tsm", "model"]
# What each mode's firmware runs, and the firmware/ folder it lives in.
_MODE_MAIN = {
    "harness": ("tsm_harness.h", "tsm_harness_run", "harness"),
    "app": ("tsm_app.h", "tsm_app_run", "app"),
}


@dataclass
class SketchProject(Project):
    runtime: str = "native"
    mode: str = "harness"
    budget: Budget | None = None


def _size(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _copy(files: list[Path], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, dest / f.name)


def counter_define(board: Board) -> str:
    kind = board.counter.get("kind")
    if kind == "dwt":
        return "-DTSM_PORT_COUNTER_DWT"
    if kind == "micros":
        return "-DTSM_PORT_COUNTER_MICROS"
    raise TinysmileError(
        f"{board.path}: [counter] kind must be 'dwt' (Cortex-M3/M4/M7) or 'micros', not {kind!r}"
    )


def check_sketch_board(board: Board, runtime: str, mode: str) -> None:
    if runtime not in RUNTIMES:
        raise TinysmileError(f"unknown runtime {runtime!r} (known: {', '.join(RUNTIMES)})")
    if mode not in MODES:
        raise TinysmileError(f"unknown mode {mode!r} (known: {', '.join(MODES)})")
    if board.platformio.get("framework") != "arduino":
        raise TinysmileError(
            f"board {board.id} has no Arduino framework; its projects come from "
            f"templates/{board['template']}/ (runtime native only)"
        )
    if runtime == "tflm" and not board.platformio.get("tflm_lib_deps"):
        raise TinysmileError(f"{board.path}: [platformio] tflm_lib_deps names no TFLM library")


def compute_budget(
    bundle: Bundle, board: Board, runtime: str, mode: str, report: dict[str, Any], tflm: Any
) -> Budget:
    if runtime == "tflm":
        return tflm_budget(report, len(bundle.model_bytes()), tflm.arena_bytes, board, mode)
    return native_budget(report, board, mode)


def generate_sketch_project(
    bundle: Bundle,
    board: Board,
    out_dir: str | Path,
    runtime: str = "native",
    mode: str = "harness",
) -> SketchProject:
    from tinysmile.compiler.api import compile_model

    check_sketch_board(board, runtime, mode)
    out = Path(out_dir).resolve()
    work = Path(tempfile.mkdtemp(prefix="tinysmile-sketch-"))
    try:
        compiled = compile_model(
            bundle.model_path,
            work / "model",
            prefix=PREFIX,
            layer_hooks=runtime == "native" and mode == "harness",
        )
        report = compiled.report
        tflm = None
        if runtime == "tflm":
            from tinysmile.compiler.tflm_export import export_tflm

            tflm = export_tflm(bundle.model_bytes(), work / "tflm", bundle.name)
        budget = compute_budget(bundle, board, runtime, mode, report, tflm)
        check_budget(budget, bundle.name)
        _write(out, bundle, board, runtime, mode, compiled, tflm, budget)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    input_size = _size(report["input"]["shape"])
    return SketchProject(
        out,
        board,
        bundle,
        compiled,
        int(board["stack_bytes"]),
        input_size + PROTO_OVERHEAD,
        runtime=runtime,
        mode=mode,
        budget=budget,
    )


def _write(
    out: Path,
    bundle: Bundle,
    board: Board,
    runtime: str,
    mode: str,
    compiled: Any,
    tflm: Any,
    budget: Budget,
) -> None:
    report = compiled.report
    src, inc = out / "src", out / "include"
    # Start clean except for PlatformIO's build folder (keeps rebuilds incremental).
    for d in (src, inc):
        if d.exists():
            shutil.rmtree(d)
    fw = firmware_dir()
    header, run_function, main_dir = _MODE_MAIN[mode]
    tsm = src / "tsm"
    _copy(sorted(fw.glob("*.h")), inc)
    _copy(sorted((fw / "port").glob("*.h")), inc)
    _copy(sorted((fw / "protocol").glob("*.h")), inc)
    _copy([fw / "protocol" / "tsm_protocol.c", fw / "protocol" / "tsm_hello.c"], tsm)
    # The Arduino core owns main(): only the mode's library part is copied.
    main_files = [f for f in sorted((fw / main_dir).glob("*.[ch]")) if not f.stem.endswith("_main")]
    _copy([f for f in main_files if f.suffix == ".h"], inc)
    _copy([f for f in main_files if f.suffix == ".c"], tsm)
    port = fw / "port" / board["port"]
    if not port.is_dir():
        raise TinysmileError(f"board {board.id}: no firmware port {port}")
    _copy(sorted(port.glob("tsm_port_*.cpp")), tsm)
    cam = board.camera
    build_flags = [
        f"-DTSM_PROTO_MAX_PAYLOAD={_size(report['input']['shape']) + PROTO_OVERHEAD}u",
        f"-DTSM_PORT_CPU_HZ={board['clock_hz']}u",
        f"-DTSM_PORT_BAUD={board.serial.get('baud', 115200)}u",
        counter_define(board),
        *pin_defines(board),
    ]
    lib_deps: list[str] = []
    if mode == "app" and cam:
        driver = port / f"tsm_camera_{cam['driver']}.cpp"
        if not driver.is_file():
            raise TinysmileError(f"board {board.id}: no camera driver {driver}")
        _copy([driver], tsm)
        build_flags.append("-DTSM_PORT_CAMERA")
        lib_deps += list(cam.get("lib_deps", []))

    input_size = _size(report["input"]["shape"])
    output_size = _size(report["output"]["shape"])
    if runtime == "native":
        _copy(sorted(fw.glob("kernels/*.h")), inc)
        _copy(list(compiled.sources), tsm)
        _copy([compiled.h_path], inc)
        _copy([compiled.c_path], src / "model")
        if mode == "harness":
            build_flags.append("-DTSM_LAYER_HOOKS")
        prefix = compiled.prefix
        render_to(
            src / "main.cpp",
            "arduino/main.cpp.j2",
            version=__version__,
            board_id=board.id,
            mode=mode,
            runtime=runtime,
            run_header=header,
            run_function=run_function,
        )
    else:
        lib_deps += list(board.platformio["tflm_lib_deps"])
        prefix = TFLM_PREFIX
        for f in tflm.files:
            _copy([f], src / "model" if f.suffix == ".cc" else inc)
        render_to(inc / "tsm_tflm_model.h", "arduino/tsm_tflm_model.h.j2", **_info_context(report))
        render_to(
            src / "model" / "tsm_tflm_model.c",
            "arduino/tsm_tflm_model.c.j2",
            **{
                **_info_context(report),
                "arena_size": tflm.arena_bytes,
            },
        )
        from tinysmile.compiler.clits import c_identifier

        render_to(
            src / "main.cpp",
            "arduino/main_tflm.cpp.j2",
            version=__version__,
            board_id=board.id,
            mode=mode,
            run_header=header,
            run_function=run_function,
            ident=c_identifier(bundle.name),
            input_size=input_size,
            output_size=output_size,
        )
    if mode == "harness":
        render_to(
            tsm / "tsm_glue.c",
            "pio/tsm_glue.c.j2",
            prefix=prefix,
            input_size=input_size,
            output_size=output_size,
            num_layers=max(len(report["layers"]) if runtime == "native" else 1, 1),
            board_name=c_string(board.id),
            stack_size=int(board["stack_bytes"]),
        )
    else:
        from tinysmile.device.app import render_app_glue

        render_app_glue(
            tsm / "tsm_app_glue.c",
            bundle,
            report,
            board,
            f"{prefix}_model.h",
            f"{prefix}_info",
            f"{prefix}_invoke",
        )
    _write_flags_script(out)
    pio = board.platformio
    options = [
        ("platform", pio["platform"]),
        ("board", pio["board"]),
        ("framework", pio["framework"]),
        ("monitor_speed", str(board.serial.get("baud", 115200))),
        ("custom_tinysmile_board", board.id),
        ("custom_tinysmile_model_sha256", report["sha256"]),
        ("custom_tinysmile_runtime", runtime),
        ("custom_tinysmile_mode", mode),
    ]
    (out / "platformio.ini").write_text(
        render(
            "arduino/platformio.ini.j2",
            version=__version__,
            board_id=board.id,
            model_name=bundle.name,
            runtime=runtime,
            mode=mode,
            platform=pio["platform"],
            env_name=ENV_NAME,
            options=options,
            lib_deps=lib_deps,
            strict_flags=" ".join(STRICT_FLAGS),
            strict_dirs=" ".join(STRICT_DIRS),
            build_flags=build_flags,
        )
    )
    (out / "tinysmile.json").write_text(
        json.dumps(
            {
                "board": board.id,
                "model": str(bundle.model_path),
                "sha256": report["sha256"],
                "runtime": runtime,
                "mode": mode,
                "budget": budget.to_dict(),
                "tflm": None
                if tflm is None
                else {
                    "ops": tflm.ops,
                    "report_bytes": tflm.report_bytes,
                    "margin": tflm.margin,
                    "arena_bytes": tflm.arena_bytes,
                },
            },
            indent=2,
        )
        + "\n"
    )


def _write_flags_script(out: Path) -> None:
    from tinysmile.resources import templates_dir

    shutil.copy2(templates_dir() / "arduino" / "tsm_flags.py", out / "tsm_flags.py")


def _info_context(report: dict[str, Any]) -> dict[str, Any]:
    from tinysmile.compiler.clits import c_float

    return {
        "version": __version__,
        "model_name": report["model"],
        "name_literal": c_string(report["model"]),
        "sha256": report["sha256"],
        "input_size": _size(report["input"]["shape"]),
        "output_size": _size(report["output"]["shape"]),
        "input_shape": [int(d) for d in report["input"]["shape"]],
        "output_shape": [int(d) for d in report["output"]["shape"]],
        "input_scale": c_float(report["input"]["scale"]),
        "input_zero_point": int(report["input"]["zero_point"]),
        "output_scale": c_float(report["output"]["scale"]),
        "output_zero_point": int(report["output"]["zero_point"]),
        "arena_size": 0,
    }


def pin_defines(board: Board) -> list[str]:
    """The LED and nose-button pins as the Arduino core names them, and their levels."""
    pins = board.pins
    out = []
    if pins.get("led"):
        out.append(f"-DTSM_PORT_LED_PIN={pins['led']}")
        out.append(f"-DTSM_PORT_LED_ON={'HIGH' if pins.get('led_active_high', True) else 'LOW'}")
    if pins.get("button"):
        out.append(f"-DTSM_PORT_BUTTON_PIN={pins['button']}")
        pressed = "LOW" if pins.get("button_active_low", True) else "HIGH"
        out.append(f"-DTSM_PORT_BUTTON_PRESSED={pressed}")
    return out


def generate_for_board(
    bundle: Bundle,
    board: Board,
    out_dir: str | Path,
    runtime: str = "native",
    mode: str = "harness",
) -> Project:
    """The board's PlatformIO project, from the template family its file names: an Arduino
    sketch project, or the bare-metal project of templates/pio/ (native runtime only)."""
    if board["template"] == "arduino":
        return generate_sketch_project(bundle, board, out_dir, runtime, mode)
    from tinysmile.device.project import generate_project

    if runtime not in RUNTIMES or mode not in MODES:
        check_sketch_board(board, runtime, mode)  # names the unknown runtime or mode
    if runtime != "native":
        raise TinysmileError(
            f"board {board.id} is bare metal (no Arduino framework for the TFLite Micro "
            "library): use --runtime native"
        )
    return generate_project(bundle, board, out_dir, mode=mode)


def project_budget(project: Project) -> Budget:
    """The budget a project was checked against (bare-metal projects: the native one)."""
    if isinstance(project, SketchProject) and project.budget is not None:
        return project.budget
    mode = "app" if (project.dir / "src" / "tsm_app_glue.c").is_file() else "harness"
    return native_budget(project.report, project.board, mode)
