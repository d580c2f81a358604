"""One description of a board's firmware project, rendered by two thin back ends.

`describe()` decides everything from the board file, the runtime (native: tinysmile's
generated C; tflm: the model on TFLite Micro) and the mode (harness: the serial protocol
for verify/profile; app: the smiling bot): which files go where, the flags and defines,
the libraries, what the firmware is recorded under, and the budget it was checked against
(before anything is written). `write()` renders it with the back end the board's template
family names:
- `pio`: bare metal with tinysmile's port layer and startup code, a PlatformIO board
  manifest and a linker script from the board file (the emulated board);
- `arduino`: an Arduino sketch (the core owns main()) for real boards.

Layout of a project::

    PROJECT/
      platformio.ini       both back ends: templates/project/platformio.ini.j2
      tsm_flags.py         strict warnings for tinysmile's own C, C++ flags for TFLite Micro
      tinysmile.json       board, runtime, mode, model hash, budget, TFLM arena
      include/             every header: firmware/, the model's, TFLM's model_data/model_ops
      src/tsm/             firmware/ sources: protocol, harness or app, port, kernels or the
                           TFLM binding, and the glue binding them to this model
      src/model/           the generated C model, or the TFLM C array and the model's facts
      src/main.cpp         arduino: the sketch (setup() runs the mode)
      boards/<board>.json, link.ld   pio: the board manifest and linker script
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinysmile import __version__
from tinysmile.boards import Board
from tinysmile.bundle import Bundle
from tinysmile.compiler.api import CompileResult, compile_model
from tinysmile.compiler.clits import c_float, c_string
from tinysmile.compiler.tflm_export import TflmExport, export_tflm
from tinysmile.device import localpio, tflm_lib
from tinysmile.device.app import FinderGlue, app_glue_context
from tinysmile.device.budget import (
    MODES,
    RUNTIMES,
    Budget,
    check_budget,
    max_payload,
    native_budget,
    tensor_size,
    tflm_budget,
)
from tinysmile.device.pio import ENV_NAME
from tinysmile.errors import TinysmileError
from tinysmile.resources import boards_dir, firmware_dir, templates_dir
from tinysmile.templating import render

PREFIX = "model"  # the generated C model's symbols: model_info, model_invoke, ...
FINDER_PREFIX = "finder"  # the face finder's: finder_info, finder_invoke, ...
TFLM_PREFIX = "tsm_tflm"  # the TFLM binding's: tsm_tflm_info, tsm_tflm_invoke, ...
STRICT_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
STRICT_DIRS = ["tsm", "model"]
# tinysmile's own sources on an Arduino core, whatever the core's optimisation (Apollo3's
# is -Os: 829,450 instructions an inference for the bundled model against 717,173 at -O2).
OPT_FLAGS = ["-O2"]
BACK_ENDS = ("pio", "arduino")
# What each mode's firmware runs: its header, entry function and firmware/ folder.
_MODE_MAIN = {
    "harness": ("tsm_harness.h", "tsm_harness_run", "harness"),
    "app": ("tsm_app.h", "tsm_app_run", "app"),
}


@dataclass
class Spec:
    """Everything a project is, before it is written."""

    board: Board
    bundle: Bundle
    runtime: str
    mode: str
    compiled: CompileResult  # tinysmile's compile of the model (report: shapes, layers)
    budget: Budget
    tag: str  # what the firmware is recorded under (emulator state, platformio.ini)
    max_payload: int
    tflm: TflmExport | None = None  # the tflm runtime's C array, resolver and arena
    library: tflm_lib.TflmLibrary | None = None  # a local TFLite Micro library
    perturb_layer: int | None = None
    finder: Bundle | None = None  # the app's face finder (always the native runtime)
    finder_compiled: CompileResult | None = None
    local: localpio.LocalBuild | None = None  # a board built offline from local folders
    # Operators on which the runtime is known not to match LiteRT (tflm_lib.known_differences).
    notes: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)  # destination -> file to copy
    renders: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    build_flags: list[str] = field(default_factory=list)  # every source, libraries too
    src_flags: list[str] = field(default_factory=list)  # the project's own sources only
    cxx_flags: list[str] = field(default_factory=list)  # every C++ source
    # A flag sequence the core forces on every C++ file, dropped from ours and the folders'.
    cxx_drop: list[str] = field(default_factory=list)
    cxx_drop_dirs: list[str] = field(default_factory=list)
    lib_deps: list[str] = field(default_factory=list)
    options: list[tuple[str, str]] = field(default_factory=list)
    platformio: dict[str, str] = field(default_factory=dict)  # the [platformio] section

    @property
    def report(self) -> dict[str, Any]:
        return self.compiled.report


@dataclass
class Project:
    dir: Path
    board: Board
    bundle: Bundle
    compiled: CompileResult
    runtime: str
    mode: str
    budget: Budget
    tag: str
    max_payload: int
    stack_bytes: int
    tflm: TflmExport | None = None
    notes: list[str] = field(default_factory=list)  # as Spec.notes
    finder: Bundle | None = None
    local: localpio.LocalBuild | None = None

    @property
    def elf(self) -> Path:
        # The ELF's name is the platform's: apollo3blue writes `program` (no suffix).
        name = self.board.get("local", {}).get("firmware", "program.elf")
        return self.dir / ".pio" / "build" / ENV_NAME / name

    @property
    def bin(self) -> Path:
        return self.dir / ".pio" / "build" / ENV_NAME / "firmware.bin"

    @property
    def report(self) -> dict[str, Any]:
        return self.compiled.report

    @property
    def model_sha256(self) -> str:
        return self.compiled.report["sha256"]


def firmware_tag(
    model_sha256: str,
    runtime: str = "native",
    mode: str = "harness",
    finder_sha256: str | None = None,
    library: str | None = None,
) -> str:
    """What a firmware is recorded under (its platformio.ini and the emulator state): the
    model's hash, marked unless it is the native harness, so that an app or a TFLM build is
    never taken for the native harness that verify/profile would otherwise reuse; an app
    with a face finder carries the finder's hash too, so a board running another finder
    (or none) is not reused; a TFLM build on a local library carries the library's key, so
    a firmware built on another library is not either."""
    marks = [runtime] if runtime != "native" else []
    marks += [f"lib-{library}"] if library else []
    marks += ["app"] if mode == "app" else []
    marks += [f"finder-{finder_sha256}"] if finder_sha256 else []
    return "+".join([model_sha256, *marks])


def finder_digest(finder: Bundle) -> str:
    """The finder's part of a firmware tag: its model and the decoding settings the glue
    takes from its bundle (a copy with another threshold is another firmware)."""
    import hashlib

    settings = json.dumps(finder.meta.get("finder", {}), sort_keys=True)
    return hashlib.sha256(f"{finder.model_hash()}:{settings}".encode()).hexdigest()[:16]


def check_choice(board: Board, runtime: str, mode: str) -> None:
    if runtime not in RUNTIMES:
        raise TinysmileError(f"unknown runtime {runtime!r} (known: {', '.join(RUNTIMES)})")
    if mode not in MODES:
        raise TinysmileError(f"unknown mode {mode!r} (known: {', '.join(MODES)})")
    if board["template"] not in BACK_ENDS:
        raise TinysmileError(
            f"{board.path}: template {board['template']!r} is not one of {', '.join(BACK_ENDS)}"
        )


def _tflm_library(board: Board, tflm_lib_dir: str | Path | None) -> tflm_lib.TflmLibrary | None:
    """The local library when one is named; else real boards keep their registry one."""
    lib = tflm_lib.locate(tflm_lib_dir)
    if lib is None and not board.platformio.get("tflm_lib_deps"):
        raise TinysmileError(
            f"board {board.id} builds TFLite Micro from a local copy of the library: pass "
            f"--tflm-lib DIR or set ${tflm_lib.ENV_VAR} (a TFLite Micro source tree, or the "
            "Arduino_TensorFlowLite folder)"
        )
    return lib


def counter_define(board: Board) -> str:
    kind = board.counter.get("kind")
    if kind == "dwt":
        return "-DTSM_PORT_COUNTER_DWT"
    if kind == "micros":
        return "-DTSM_PORT_COUNTER_MICROS"
    raise TinysmileError(
        f"{board.path}: [counter] kind must be 'dwt' (Cortex-M3/M4/M7) or 'micros', not {kind!r}"
    )


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


def platform_uri(platform: str) -> str:
    """A board's PlatformIO platform: a folder under boards/ is a local platform."""
    local = boards_dir() / platform
    if local.is_dir():
        return f"symlink://{local.resolve()}"
    return platform


def describe(
    bundle: Bundle,
    board: Board,
    work: Path,
    runtime: str = "native",
    mode: str = "harness",
    perturb_layer: int | None = None,
    tflm_lib_dir: str | Path | None = None,
    finder: Bundle | None = None,
    core_dir: str | Path | None = None,
) -> Spec:
    """The project for this board, runtime and mode; `work` holds the generated model files
    until write() copies them. Refuses, with the numbers, a model that does not fit.
    finder: the app's face finder bundle (None: the camera frame's centre square);
    core_dir: the Arduino core of a board built from local folders (boards' [local])."""
    check_choice(board, runtime, mode)
    # First: a missing or wrong core is one line before any compiling.
    local = localpio.prepare(board, core_dir) if localpio.is_local(board) else None
    if finder is not None and mode != "app":
        raise TinysmileError("a face finder is part of the app: use --mode app")
    if finder is not None and board.camera is None:
        raise TinysmileError(
            f"board {board.id} has no camera frame for a face finder to search: --detector none"
        )
    if runtime == "tflm" and perturb_layer is not None:
        raise TinysmileError("--perturb-layer changes the generated C: native runtime only")
    library = _tflm_library(board, tflm_lib_dir) if runtime == "tflm" else None
    compiled = compile_model(
        bundle.model_path,
        work / "model",
        prefix=PREFIX,
        layer_hooks=runtime == "native" and mode == "harness",
        perturb_layer=perturb_layer,
    )
    report = compiled.report
    finder_compiled = None
    if finder is not None:
        # Always the generated C on tinysmile's kernels, whatever runs the smile model.
        finder_compiled = compile_model(finder.model_path, work / "finder", prefix=FINDER_PREFIX)
    finder_report = finder_compiled.report if finder_compiled else None
    tflm = None
    if runtime == "tflm":
        if report.get("stripped_edges"):
            raise TinysmileError(
                f"{bundle.name}: float input/output ({', '.join(report['stripped_edges'])}); "
                "the tflm runtime speaks int8 over the link: use --runtime native"
            )
        tflm = export_tflm(bundle.model_bytes(), work / "tflm", bundle.name)
        budget = tflm_budget(
            report,
            len(bundle.model_bytes()),
            tflm.arena_bytes,
            board,
            mode,
            finder_report,
            **({"code_bytes": library.code_bytes} if library else {}),
        )
    else:
        budget = native_budget(report, board, mode, finder_report)
    what = bundle.name if finder is None else f"{bundle.name} with {finder.name}"
    check_budget(budget, what)

    spec = Spec(
        board=board,
        bundle=bundle,
        runtime=runtime,
        mode=mode,
        compiled=compiled,
        budget=budget,
        tag=firmware_tag(
            report["sha256"],
            runtime,
            mode,
            finder.model_hash() if finder else None,
            library.key if library else None,
        ),
        max_payload=max_payload(report, mode, board.camera is not None),
        tflm=tflm,
        library=library,
        perturb_layer=perturb_layer,
        notes=tflm_lib.known_differences(compiled.program.graph, library) if tflm else [],
        finder=finder,
        finder_compiled=finder_compiled,
        local=local,
    )
    _sources(spec)
    _flags(spec)
    return spec


def _copy(spec: Spec, dest: str, files: list[Path]) -> None:
    for f in files:
        spec.files[f"{dest}/{f.name}"] = f


def _sources(spec: Spec) -> None:
    board, report, fw = spec.board, spec.report, firmware_dir()
    bare = board["template"] == "pio"
    header, run_function, main_dir = _MODE_MAIN[spec.mode]
    _copy(spec, "include", sorted(fw.glob("*.h")))
    _copy(spec, "include", sorted((fw / "port").glob("*.h")))
    _copy(spec, "include", sorted((fw / "protocol").glob("*.h")))
    # Every .c of the protocol: the framing and HELLO's encoder (shared by harness and app).
    _copy(spec, "src/tsm", sorted((fw / "protocol").glob("*.c")))
    main_files = sorted((fw / main_dir).glob("*.[ch]"))
    _copy(spec, "include", [f for f in main_files if f.suffix == ".h"])
    # Bare metal: the mode's main(); an Arduino core owns main() and calls setup().
    _copy(
        spec,
        "src/tsm",
        [f for f in main_files if f.suffix == ".c" and (bare or not f.stem.endswith("_main"))],
    )
    port = fw / "port" / board["port"]
    if not port.is_dir():
        raise TinysmileError(f"board {board.id}: no firmware port {port}")
    _copy(spec, "src/tsm", sorted(port.glob("*.c")) + sorted(port.glob("tsm_port_*.cpp")))
    cam = board.camera
    if spec.mode == "app":
        # The pipeline's integer resize, framing rule and finder decoding.
        _copy(spec, "include", sorted((fw / "vision").glob("*.h")))
        _copy(spec, "src/tsm", sorted((fw / "vision").glob("*.c")))
    if spec.mode == "app" and cam and cam.get("driver"):
        driver = port / f"tsm_camera_{cam['driver']}.cpp"
        if not driver.is_file():
            raise TinysmileError(f"board {board.id}: no camera driver {driver}")
        _copy(spec, "src/tsm", [driver])

    input_size = tensor_size(report["input"]["shape"])
    output_size = tensor_size(report["output"]["shape"])
    native = [spec.compiled] if spec.runtime == "native" else []
    native += [spec.finder_compiled] if spec.finder_compiled is not None else []
    if native:
        # Both models' kernels, each file once: the two models share them.
        _copy(spec, "include", sorted((fw / "kernels").glob("*.h")))
        for compiled in native:
            _copy(spec, "include", [compiled.h_path])
            _copy(spec, "src/tsm", list(compiled.sources))
            _copy(spec, "src/model", [compiled.c_path])
    if spec.runtime == "native":
        compiled = spec.compiled
        prefix, setup, arena_used = compiled.prefix, "0", "0"
        num_layers = max(len(report["layers"]), 1)
    else:
        tflm = spec.tflm
        for f in tflm.files:
            _copy(spec, "src/model" if f.suffix == ".cc" else "include", [f])
        _copy(spec, "include", sorted((fw / "tflm").glob("*.h")))
        _copy(spec, "src/tsm", sorted((fw / "tflm").glob("*.c*")))
        prefix = TFLM_PREFIX
        setup, arena_used = f"{prefix}_setup", f"{prefix}_arena_used"
        num_layers = max(tflm.num_ops, 1)
        spec.renders["src/model/tsm_tflm_model.c"] = (
            "tflm/tsm_tflm_model.c.j2",
            {**_info_context(report), "arena_size": tflm.arena_bytes, "num_ops": tflm.num_ops},
        )
    if spec.mode == "harness":
        spec.renders["src/tsm/tsm_glue.c"] = (
            "harness/tsm_glue.c.j2",
            {
                "prefix": prefix,
                "input_size": input_size,
                "output_size": output_size,
                "num_layers": num_layers,
                "board_name": c_string(board.id),
                "stack_size": int(board["stack_bytes"]),
                "setup": setup,
                "arena_used": arena_used,
            },
        )
    else:
        spec.renders["src/tsm/tsm_app_glue.c"] = (
            "app/tsm_app_glue.c.j2",
            app_glue_context(
                spec.bundle,
                report,
                board,
                f"{prefix}_model.h",
                f"{prefix}_info",
                f"{prefix}_invoke",
                setup,
                None
                if spec.finder_compiled is None
                else FinderGlue(spec.finder, spec.finder_compiled.report, FINDER_PREFIX),
            ),
        )
    if not bare:
        spec.renders["src/main.cpp"] = (
            "arduino/main.cpp.j2",
            {
                "version": __version__,
                "board_id": board.id,
                "mode": spec.mode,
                "runtime": spec.runtime,
                "run_header": header,
                "run_function": run_function,
            },
        )


def _flags(spec: Spec) -> None:
    board, bare = spec.board, spec.board["template"] == "pio"
    # Model- and board-specific defines stay off the libraries' command lines, so that the
    # library objects are the same (and cached) for every model.
    flags = [
        f"-DTSM_PROTO_MAX_PAYLOAD={spec.max_payload}u",
        f"-DTSM_PORT_CPU_HZ={board['clock_hz']}u",
        f"-DTSM_PORT_BAUD={board.serial.get('baud', 115200)}u",
    ]
    if spec.runtime == "native" and spec.mode == "harness":
        flags.append("-DTSM_LAYER_HOOKS")
    common = ["-O2"] if bare else []
    if not bare:
        flags += [counter_define(board), *pin_defines(board)]
        if spec.mode == "app" and board.camera and board.camera.get("driver"):
            flags.append("-DTSM_PORT_CAMERA")
            spec.lib_deps += _camera_libs(board)
    pio = board.platformio
    platform = platform_uri(pio["platform"]) if spec.local is None else spec.local.platform
    spec.options = [("platform", platform), ("board", pio["board"])]
    if pio.get("framework"):
        spec.options.append(("framework", pio["framework"]))
    if pio.get("upload_protocol"):
        # The linker script follows it (apollo3blue: asb at 0xC000, svl at 0x10000).
        spec.options.append(("upload_protocol", pio["upload_protocol"]))
    if spec.local is not None:
        spec.options.append(
            ("platform_packages", "".join(f"\n    {p}" for p in spec.local.packages))
        )
        common += [f"-L{d}" for d in spec.local.lib_dirs]
        common += [f"-D{d}" for d in board["local"].get("recipe_defines", [])]
        # The core's objects are the same for every model on a board: compiled once.
        spec.platformio["build_cache_dir"] = str(tflm_lib.cache_dir() / "pio-build-cache")
    if spec.runtime == "tflm":
        if spec.library is None:
            # The registry's library, compiled the way its Arduino builder does.
            spec.lib_deps += list(pio["tflm_lib_deps"])
        else:
            defines = [
                d
                for d in spec.library.defines
                # An Arduino core defines ARDUINO itself (with its version).
                if not (d == "ARDUINO" and pio.get("framework") == "arduino")
                # The profiler hook TFLM calls per op is compiled out with the strings: the
                # harness keeps them (PROFILE), the app drops them (smaller).
                and not (d == "TF_LITE_STRIP_ERROR_STRINGS" and spec.mode == "harness")
            ]
            common += [f"-D{d}" for d in defines]
            # The library's include roots for our own files that include its headers (the
            # parts' manifests carry them for the library's).
            flags += [f"-I{d}" for d in spec.library.include_dirs]
            spec.cxx_flags += tflm_lib.CXX_FLAGS
            forced = board.get("local", {}).get("forced_cxx_flags", [])
            if forced:
                spec.cxx_drop = list(forced)
                spec.cxx_drop_dirs = [str(spec.library.root)]
            parts = spec.library.manifests(spec.tflm.methods, tflm_lib.cache_dir())
            spec.lib_deps += [f"symlink://{p}" for p in parts]
            spec.options.append(("lib_ldf_mode", "off" if bare else "chain"))
            # The parts' objects are shared between models through PlatformIO's cache.
            spec.platformio["build_cache_dir"] = str(tflm_lib.cache_dir() / "pio-build-cache")
    spec.build_flags = common
    spec.src_flags = flags
    spec.options += [
        ("monitor_speed", str(board.serial.get("baud", 115200))),
        ("custom_tinysmile_board", board.id),
        ("custom_tinysmile_model_sha256", spec.tag),
        ("custom_tinysmile_runtime", spec.runtime),
        ("custom_tinysmile_mode", spec.mode),
    ]


def _camera_libs(board: Board) -> list[str]:
    """The camera driver's libraries: a local copy, used in place, when the camera table's
    variable names one; else the registry's (a networked machine)."""
    import os

    cam = board.camera or {}
    env = cam.get("local_lib_env")
    local = os.environ.get(env) if env else None
    if not local:
        return list(cam.get("lib_deps", []))
    folder = Path(local).expanduser().resolve()
    if not (folder / "library.properties").is_file() and not (folder / "library.json").is_file():
        raise TinysmileError(f"${env}={local}: not an Arduino library (no library.properties)")
    return [f"symlink://{folder}"]


def _info_context(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": __version__,
        "model_name": report["model"],
        "name_literal": c_string(report["model"]),
        "sha256": report["sha256"],
        "input_size": tensor_size(report["input"]["shape"]),
        "output_size": tensor_size(report["output"]["shape"]),
        "input_shape": [int(d) for d in report["input"]["shape"]],
        "output_shape": [int(d) for d in report["output"]["shape"]],
        "input_scale": c_float(report["input"]["scale"]),
        "input_zero_point": int(report["input"]["zero_point"]),
        "output_scale": c_float(report["output"]["scale"]),
        "output_zero_point": int(report["output"]["zero_point"]),
    }


def write(spec: Spec, out_dir: str | Path) -> Project:
    """Render the description into out_dir with the board's back end."""
    out = Path(out_dir).resolve()
    # Start clean except for PlatformIO's build folder (keeps rebuilds incremental).
    for d in ("src", "include"):
        if (out / d).exists():
            shutil.rmtree(out / d)
    for dest, src in spec.files.items():
        (out / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out / dest)
    for dest, (template, context) in spec.renders.items():
        (out / dest).parent.mkdir(parents=True, exist_ok=True)
        (out / dest).write_text(render(template, **context))
    shutil.copy2(templates_dir() / "project" / "tsm_flags.py", out / "tsm_flags.py")
    if spec.board["template"] == "pio":
        _write_bare(spec, out)
    (out / "platformio.ini").write_text(
        render(
            "project/platformio.ini.j2",
            version=__version__,
            board_id=spec.board.id,
            model_name=spec.bundle.name,
            runtime=spec.runtime,
            mode=spec.mode,
            notes=_notes(spec),
            env_name=ENV_NAME,
            platformio=sorted(spec.platformio.items()),
            options=spec.options,
            lib_deps=spec.lib_deps,
            strict_flags=" ".join(STRICT_FLAGS),
            strict_dirs=" ".join(STRICT_DIRS),
            opt_flags=" ".join(OPT_FLAGS if spec.board["template"] != "pio" else []),
            cxx_drop=" ".join(spec.cxx_drop),
            cxx_drop_dirs=" ".join(spec.cxx_drop_dirs),
            cxx_flags=" ".join(spec.cxx_flags),
            build_flags=spec.build_flags,
            src_flags=spec.src_flags,
        )
    )
    tflm = spec.tflm
    (out / "tinysmile.json").write_text(
        json.dumps(
            {
                "board": spec.board.id,
                "model": str(spec.bundle.model_path),
                "sha256": spec.report["sha256"],
                "runtime": spec.runtime,
                "mode": spec.mode,
                "perturb_layer": spec.perturb_layer,
                "finder": None
                if spec.finder is None
                else {"model": str(spec.finder.model_path), "sha256": spec.finder.model_hash()},
                "budget": spec.budget.to_dict(),
                "tflm": None
                if tflm is None
                else {
                    "ops": tflm.ops,
                    "report_bytes": tflm.report_bytes,
                    "margin": tflm.margin,
                    "arena_bytes": tflm.arena_bytes,
                    "library": str(spec.library.root) if spec.library else None,
                },
            },
            indent=2,
        )
        + "\n"
    )
    return Project(
        out,
        spec.board,
        spec.bundle,
        spec.compiled,
        spec.runtime,
        spec.mode,
        spec.budget,
        spec.tag,
        spec.max_payload,
        int(spec.board["stack_bytes"]),
        tflm,
        spec.notes,
        spec.finder,
        spec.local,
    )


def _notes(spec: Spec) -> list[str]:
    """Comment lines for platformio.ini: what its first build needs."""
    if spec.board["template"] == "pio":
        return []
    platform = spec.board.platformio["platform"]
    if spec.local is not None and spec.local.offline:
        return [
            f"Builds offline: the {platform} platform and the Arduino core "
            + f"(v{spec.local.core_version}) from",
            f"local folders ({spec.local.core}), the system toolchain and",
            "placeholders as local packages in tinysmile's cache.",
        ]
    return [
        f"The first build downloads the {platform} platform, its toolchain and the",
        "registry libraries below from PlatformIO's registry: run it once on a networked",
        "machine.",
    ]


def _hex(value: int) -> str:
    return f"0x{value:08X}"


def _write_bare(spec: Spec, out: Path) -> None:
    """Bare metal: the linker script and PlatformIO board manifest from the board file."""
    board = spec.board
    (out / "link.ld").write_text(
        render(
            f"pio/{board['linker_template']}",
            board_id=board.id,
            flash_origin=_hex(board["flash_origin"]),
            flash_size=_hex(board["flash_bytes"]),
            ram_origin=_hex(board["ram_origin"]),
            ram_size=_hex(board["ram_bytes"]),
            stack_size=int(board["stack_bytes"]),
        )
    )
    manifest = {
        "name": board.name,
        "vendor": "tinysmile",
        "url": "https://www.qemu.org/docs/master/system/arm/mps2.html",
        "frameworks": [],
        "build": {
            "cpu": board["core"],
            "mcu": board.qemu.get("machine", board["core"]),
            "f_cpu": f"{board['clock_hz']}L",
            "tinysmile_cflags": list(board["cflags"]),
            "ldscript": "$PROJECT_DIR/link.ld",
        },
        "upload": {
            "maximum_size": board["flash_bytes"],
            "maximum_ram_size": board["ram_bytes"],
            "protocol": "qemu" if board.emulated else "default",
        },
    }
    (out / "boards").mkdir(parents=True, exist_ok=True)
    (out / "boards" / f"{board.platformio['board']}.json").write_text(
        json.dumps(manifest, indent=2) + "\n"
    )


def generate_project(
    bundle: Bundle,
    board: Board,
    out_dir: str | Path,
    runtime: str = "native",
    mode: str = "harness",
    perturb_layer: int | None = None,
    tflm_lib_dir: str | Path | None = None,
    finder: Bundle | None = None,
    core_dir: str | Path | None = None,
) -> Project:
    """describe() then write(): the board's PlatformIO project in out_dir."""
    work = Path(tempfile.mkdtemp(prefix="tinysmile-project-"))
    try:
        spec = describe(
            bundle, board, work, runtime, mode, perturb_layer, tflm_lib_dir, finder, core_dir
        )
        return write(spec, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
