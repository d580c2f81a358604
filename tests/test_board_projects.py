"""Real-board projects, offline: board files, one PlatformIO project per board x runtime x
mode (platformio.ini read by PlatformIO's own parser), their board-independent C built with
arm-none-eabi-gcc -Werror for Cortex-M4F and Cortex-M0+, the TFLM binding compiled against
the real TFLite Micro headers, the TFLM arena checked with TFLite Micro's own interpreter,
the budget refusing at its boundary, and `flash`'s user errors."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from device_helpers import (
    APOLLO3_CORE,
    ARDUINO_LIB,
    TFLM,
    TFLM_ARDUINO,
    TFLM_LIB,
)

from tinysmile.boards import Board, list_boards, load_board
from tinysmile.bundle import load_bundle
from tinysmile.cli import main
from tinysmile.compiler.reader import parse_model
from tinysmile.compiler.tflm import tflm_arena
from tinysmile.compiler.tflm_export import DEFAULT_MARGIN, RESOLVER_METHODS
from tinysmile.device import pio, tflm_lib
from tinysmile.device.project import generate_project
from tinysmile.errors import TinysmileError

REAL = [b for b in list_boards() if not load_board(b).emulated]
RUNTIMES = ("native", "tflm")
MODES = ("harness", "app")
CPUS = {
    "cortex-m4f": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    "cortex-m0plus": ["-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"],
}
HAVE_GCC = shutil.which("arm-none-eabi-gcc") is not None
# TFLite Micro as the project's machines keep it (../shared/libraries): a local library for
# --tflm-lib is the newest, as a source tree (or $TINYSMILE_TFLM_LIB); the real boards'
# registry dependency is the Arduino library, whose headers the sketch is compiled against.
LIB, ARDUINO = TFLM, TFLM_ARDUINO


@pytest.fixture(scope="module", autouse=True)
def apollo3_core():
    """The Apollo3 boards' core, as the user's $TINYSMILE_APOLLO3_CORE would name it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYSMILE_APOLLO3_CORE", str(APOLLO3_CORE))
        mp.delenv("TINYSMILE_HM01B0_LIB", raising=False)  # the registry's camera library
        yield APOLLO3_CORE


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """Every real board x runtime x mode, for the bundled smile model."""
    bundle = load_bundle(None)
    root = tmp_path_factory.mktemp("projects")
    out = {}
    for board_id in REAL:
        board = load_board(board_id)
        for runtime in RUNTIMES:
            for mode in MODES:
                out[board_id, runtime, mode] = generate_project(
                    bundle, board, root / f"{board_id}-{runtime}-{mode}", runtime, mode
                )
    return out


def test_board_files_state_the_facts():
    assert len(REAL) >= 5
    by_platform = {}
    for board_id in REAL:
        b = load_board(board_id)
        by_platform.setdefault(b.platformio["platform"], []).append(b)
        assert b.platformio["framework"] == "arduino"
        assert b.platformio["board"]
        for usb in b.serial["usb_ids"]:
            assert re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{4}", usb), usb
        assert b.serial["baud"] > 0 and b["clock_hz"] > 0
        # A cycle counter only where the core has DWT; a timer elsewhere.
        has_dwt = b["core"] in ("cortex-m3", "cortex-m4", "cortex-m7")
        assert (b.counter["kind"] == "dwt") == has_dwt, board_id
        assert b.counter_unit == ("cycles" if has_dwt else "microseconds")
    apollo = by_platform["apollo3blue"]
    assert len(apollo) == 2
    for b in apollo:
        assert (b["clock_hz"], b["flash_bytes"], b["ram_bytes"]) == (48_000_000, 1 << 20, 384 << 10)
        assert b["core"] == "cortex-m4" and b["dsp"]
    assert [b.camera["driver"] for b in apollo if b.camera] == ["hm01b0"]
    (nano,) = by_platform["nordicnrf52"]
    assert nano.platformio["board"] == "nano33ble"
    (pico,) = by_platform["raspberrypi"]
    assert pico["core"] == "cortex-m0plus" and not pico["dsp"]
    (esp,) = by_platform["espressif32"]
    assert "esp32-s3" in esp.platformio["board"]


def test_platformio_ini_parses_with_platformio(projects):
    from platformio.project.config import ProjectConfig

    assert len(projects) == len(REAL) * 4
    for (board_id, runtime, mode), project in projects.items():
        board = load_board(board_id)
        cfg = ProjectConfig(str(project.dir / "platformio.ini"), parse_extra=False)
        cfg.validate(silent=True)
        env = "env:tinysmile"
        if board.get("local"):
            # Built offline: the platform beside the core, the core in place.
            platform = APOLLO3_CORE.parent / board["local"]["platform_folder"]
            assert cfg.get(env, "platform") == f"file://{platform}"
            packages = cfg.get(env, "platform_packages")
            assert f"framework-arduinoapollo3@symlink://{APOLLO3_CORE}" in packages
            assert cfg.get(env, "upload_protocol") == board.platformio["upload_protocol"]
        else:
            assert cfg.get(env, "platform") == board.platformio["platform"]
        assert cfg.get(env, "board") == board.platformio["board"]
        assert cfg.get(env, "framework") == [board.platformio["framework"]]
        assert cfg.get(env, "custom_tinysmile_runtime") == runtime
        assert cfg.get(env, "custom_tinysmile_mode") == mode
        libs = cfg.get(env, "lib_deps")
        tflm_libs = board.platformio["tflm_lib_deps"]
        cam_libs = board.camera["lib_deps"] if board.camera and mode == "app" else []
        assert libs == cam_libs + (tflm_libs if runtime == "tflm" else [])
        flags = cfg.get(env, "build_src_flags")
        assert ("-DTSM_PORT_COUNTER_DWT" in flags) == (board.counter["kind"] == "dwt")
        assert ("-DTSM_PORT_COUNTER_MICROS" in flags) == (board.counter["kind"] == "micros")
        assert ("-DTSM_PORT_CAMERA" in flags) == bool(cam_libs)
        assert (project.dir / "src" / "main.cpp").is_file()
        assert (project.dir / "include" / "tsm_port.h").is_file()
        assert (project.dir / "tsm_flags.py").is_file()


def _compile_c(project_dir: Path, cpu: list[str], work: Path) -> subprocess.CompletedProcess:
    sources = sorted(str(p) for p in (project_dir / "src").rglob("*.c"))
    defines = [
        ln.strip()
        for ln in (project_dir / "platformio.ini").read_text().splitlines()
        if ln.strip().startswith("-DTSM_PROTO") or ln.strip() == "-DTSM_LAYER_HOOKS"
    ]
    work.mkdir(parents=True)
    cmd = [
        "arm-none-eabi-gcc",
        *cpu,
        "-std=c99",
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        f"-I{project_dir / 'include'}",
        *defines,
        "-c",
        *sources,
    ]
    return subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.skipif(not HAVE_GCC, reason="needs arm-none-eabi-gcc")
def test_board_independent_c_builds_for_m4f_and_m0plus(projects, tmp_path):
    jobs = {}
    with ThreadPoolExecutor(max_workers=4) as ex:
        for key, project in projects.items():
            for cpu_name, cpu in CPUS.items():
                work = tmp_path / "-".join(key) / cpu_name
                jobs[key, cpu_name] = ex.submit(_compile_c, project.dir, cpu, work)
    for (key, cpu_name), job in jobs.items():
        proc = job.result()
        assert proc.returncode == 0, f"{key} {cpu_name}: {proc.stderr[-2000:]}"
        objects = {p.name for p in (tmp_path / "-".join(key) / cpu_name).glob("*.o")}
        _board, runtime, mode = key
        # The model, the protocol and the mode's logic are all in what was compiled.
        expected = {"tsm_protocol.o", f"tsm_{mode}.o"}
        expected |= (
            {"model_model.o", "tsm_conv2d.o"} if runtime == "native" else {"tsm_tflm_model.o"}
        )
        assert expected <= objects, (key, cpu_name, objects)


@pytest.mark.skipif(shutil.which("arm-none-eabi-g++") is None, reason="needs arm-none-eabi-g++")
def test_tflm_model_array_builds_as_cpp(projects, tmp_path):
    project = projects[REAL[0], "tflm", "harness"]
    src = project.dir / "src" / "model" / "model_data.cc"
    cmd = ["arm-none-eabi-g++", *CPUS["cortex-m4f"], "-std=c++11", "-Wall", "-Wextra"]
    cmd += ["-Werror", f"-I{project.dir / 'include'}", "-c", str(src), "-o", str(tmp_path / "m.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def test_models(tmp_path_factory):
    from models import build_mobilenet_block, build_smile_like

    d = tmp_path_factory.mktemp("tflm-models")
    out = {}
    for name, build in (
        ("smile_like", build_smile_like),
        ("mobilenet_block", build_mobilenet_block),
    ):
        path = d / f"{name}.tflite"
        path.write_bytes(build())
        out[name] = path
    return out


def _runs_in_tflite_micro(model: bytes, arena: int) -> bool:
    """Whether TFLite Micro's own interpreter (the tflite-micro package) sets the model up
    and runs it in an arena of exactly this many bytes."""
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime

    try:
        interp = runtime.Interpreter.from_bytes(model, arena_size=arena)
        detail = interp.get_input_details(0)
        interp.set_input(np.zeros(detail["shape"], dtype=detail["dtype"]), 0)
        interp.invoke()
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize("name", ["smile_like", "mobilenet_block", "bundled"])
def test_tflm_project_arena_and_resolver(name, test_models, tmp_path):
    path = load_bundle(None).model_path if name == "bundled" else test_models[name]
    bundle = load_bundle(path)
    board = load_board(REAL[0])
    project = generate_project(bundle, board, tmp_path / "p", "tflm", "harness")
    model = path.read_bytes()
    ops_h = (project.dir / "include" / "model_ops.h").read_text()
    arena = int(re.search(r"kTsmArenaSize = (\d+);", ops_h).group(1))
    assert project.budget.ram["arena"] == arena
    glue = (project.dir / "src" / "model" / "tsm_tflm_model.c").read_text()
    assert f".arena_size = {arena}," in glue
    # TFLite Micro itself is the judge: its interpreter runs in exactly the exported arena,
    # and fails 16 bytes (its alignment) below its own report, so the report is the real
    # need and the margin comes on top of it.
    rep = tflm_arena(model)
    report = rep["head"] + rep["tail"]
    assert _runs_in_tflite_micro(model, arena)
    assert not _runs_in_tflite_micro(model, report - 16)
    # The margin is the one model_ops.h states, on top of that report (16-byte rounding).
    stated = float(re.search(r"plus a stated ([\d.]+)% margin", ops_h).group(1)) / 100
    assert stated == DEFAULT_MARGIN
    assert re.search(rf"=\s*\*?\s*{report} bytes", ops_h), "model_ops.h states the report"
    assert report * (1 + stated) <= arena < report * (1 + stated) + 16
    methods = re.findall(r"resolver\.(Add\w+)\(\)", ops_h)
    kinds = {op.kind for op in parse_model(model).ops}
    assert sorted(methods) == sorted(RESOLVER_METHODS[k] for k in kinds)
    assert f"kTsmOpCount = {len(kinds)};" in ops_h
    assert project.budget.flash["model"] == len(model)


def _shrunk(board_id: str, **changes) -> Board:
    b = load_board(board_id)
    return dataclasses.replace(b, data={**b.data, **changes})


def test_budget_refuses_at_its_boundary(tmp_path):
    """The budget's own totals are the boundary: a board with exactly that much fits, one
    byte less is refused before anything is written, naming every part. (That the parts are
    right is checked against the linker's section sizes on the emulated board.)"""
    bundle = load_bundle(None)
    board = load_board(REAL[0])
    fits = generate_project(bundle, board, tmp_path / "fits", "native", "harness")
    ram, flash = fits.budget.ram_total, fits.budget.flash_total
    exact = _shrunk(REAL[0], ram_bytes=ram, flash_bytes=flash)
    generate_project(bundle, exact, tmp_path / "exact", "native", "harness")
    dest = tmp_path / "refused"
    with pytest.raises(TinysmileError) as err:
        generate_project(bundle, _shrunk(REAL[0], ram_bytes=ram - 1), dest)
    msg = str(err.value)
    assert f"needs {ram:,} bytes of RAM (" in msg and f"has {ram - 1:,}: 1 bytes too many" in msg
    for part, n in fits.budget.ram.items():
        assert f"{part} {n:,}" in msg
    assert not dest.exists()  # refused before anything was written
    with pytest.raises(
        TinysmileError, match=rf"needs {flash:,} bytes of flash .* 1 bytes too many"
    ):
        generate_project(bundle, _shrunk(REAL[0], flash_bytes=flash - 1), tmp_path / "r2")
    # TFLM: the .tflite itself is in flash.
    tflm = generate_project(bundle, board, tmp_path / "t", "tflm", "app")
    assert tflm.budget.flash["model"] == len(bundle.model_bytes())
    tflm_flash = tflm.budget.flash_total
    with pytest.raises(TinysmileError, match=rf"\(tflm, app\) needs {tflm_flash:,} bytes of flash"):
        generate_project(
            bundle, _shrunk(REAL[0], flash_bytes=tflm_flash - 5), tmp_path / "r3", "tflm", "app"
        )


def test_cli_compile_board_json(tmp_path, capsys, monkeypatch):
    import json

    out = tmp_path / "proj"
    rc = main(["compile", "--board", REAL[0], "--runtime", "tflm", "--out", str(out), "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["budget"]["runtime"] == "tflm" and (out / "platformio.ini").is_file()
    assert main(["compile", "--runtime", "tflm", "--out", str(tmp_path / "x")]) == 2
    assert "--runtime, --mode, --tflm-lib and --core need --board" in capsys.readouterr().err
    # The emulated board has no registry library to fall back on: one line, what to pass.
    monkeypatch.delenv(tflm_lib.ENV_VAR, raising=False)
    emulated = next(b for b in list_boards() if load_board(b).emulated)
    assert main(["compile", "--board", emulated, "--runtime", "tflm", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "pass --tflm-lib DIR or set $TINYSMILE_TFLM_LIB" in err


def test_flash_without_registry_says_what_to_do(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TINYSMILE_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(pio, "platform_installed", lambda name: False)
    monkeypatch.setattr(pio, "registry_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(pio, "ensure_scons", lambda **kw: "skipped in this test")
    # A board on the registry path (the Apollo3 boards build from local folders).
    board = next(load_board(b) for b in REAL if not load_board(b).get("local"))
    platform = board.platformio["platform"]
    rc = main(["flash", "--board", board.id, "--runtime", "tflm", "--port", "/dev/null"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "PlatformIO cannot reach its registry (api.registry.platformio.org)" in err
    assert f"pio pkg install -g -p {platform}" in err
    assert "networked machine" in err
    assert board.platformio["tflm_lib_deps"][0] in err  # the runtime's library too


def test_flash_finds_no_board_on_usb(monkeypatch, tmp_path, capsys):
    from tinysmile.device import transport

    monkeypatch.setenv("TINYSMILE_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(transport, "find_ports", lambda ids: [])
    board = load_board(REAL[0])
    assert main(["flash", "--board", REAL[0]]) == 2
    err = capsys.readouterr().err
    assert f"no {REAL[0]} found on USB (looked for {', '.join(board.serial['usb_ids'])})" in err


def test_offline_log_is_recognised():
    assert pio.looks_offline("HTTPClientError: Could not resolve host api.registry.platformio.org")
    assert not pio.looks_offline("src/main.cpp:3:10: error: expected ';'")


@pytest.mark.hardware
@pytest.mark.parametrize("board_id", REAL)
def test_flash_verify_profile_on_attached_board(board_id):
    from tinysmile.device.commands import flash, run_profile, run_verify
    from tinysmile.device.transport import find_ports

    board = load_board(board_id)
    ports = find_ports(list(board.serial["usb_ids"]))
    if not ports:
        pytest.skip(f"no {board_id} attached")
    res = flash(None, board_id, log=lambda m: None, port=ports[0])
    assert res["port"] == ports[0]
    ver = run_verify(None, board_id, ports[0], 8, None)
    assert ver["ok"] and ver["matched"] == 8
    prof = run_profile(None, board_id, ports[0])
    assert prof["unit"] == board.counter_unit and prof["total"] > 0


STUB = Path(__file__).resolve().parent / "fixtures" / "arduino_stub"


@pytest.mark.skipif(shutil.which("arm-none-eabi-g++") is None, reason="needs arm-none-eabi-g++")
@pytest.mark.parametrize("mode", MODES)
def test_arduino_port_and_sketch_compile_against_the_arduino_api(projects, mode, tmp_path):
    """No Arduino core offline: the port layer and the native sketch are compiled against a
    stub declaring the documented Arduino calls they use, per board (counter, pins)."""
    for board_id in REAL:
        board = load_board(board_id)
        project = projects[board_id, "native", mode]
        flags = [
            ln.strip()
            for ln in (project.dir / "platformio.ini").read_text().splitlines()
            if ln.strip().startswith("-D") and "_PIN=" not in ln and "CAMERA" not in ln
        ]
        # Pin names are the core's (LED_BLUE, D2...): numbers stand in for them here.
        flags += ["-DTSM_PORT_LED_PIN=13", "-DTSM_PORT_BUTTON_PIN=2"]
        cpu = CPUS["cortex-m0plus"] if board["core"] == "cortex-m0plus" else CPUS["cortex-m4f"]
        for src in ("main.cpp", "tsm/tsm_port_arduino.cpp"):
            cmd = ["arm-none-eabi-g++", *cpu, "-std=c++11", "-O2", "-Wall", "-Wextra", "-Werror"]
            cmd += [f"-I{STUB}", f"-I{project.dir / 'include'}", *flags]
            cmd += ["-c", str(project.dir / "src" / src), "-o", str(tmp_path / "x.o")]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
            assert proc.returncode == 0, f"{board_id} {src}: {proc.stderr[-1500:]}"


def test_flash_uploads_through_the_port_found_by_vid_pid(monkeypatch, tmp_path, capsys):
    import json

    from tinysmile.device import transport

    board = load_board(REAL[0])
    seen_ids, calls = [], []
    monkeypatch.setenv("TINYSMILE_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(pio, "ensure_scons", lambda **kw: "skipped in this test")
    monkeypatch.setattr(pio, "platform_installed", lambda name: True)
    monkeypatch.setattr(
        transport, "find_ports", lambda ids: seen_ids.append(list(ids)) or ["/dev/ttyFAKE7"]
    )
    real_run = subprocess.run

    def fake_run(cmd, *args, **kwargs):
        if "platformio" not in cmd:
            return real_run(cmd, *args, **kwargs)
        calls.append(list(cmd))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(pio.subprocess, "run", fake_run)
    assert main(["flash", "--board", REAL[0], "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert seen_ids == [board.serial["usb_ids"]]
    (cmd,) = calls
    assert cmd[cmd.index("-t") + 1] == "upload"
    assert cmd[cmd.index("--upload-port") + 1] == "/dev/ttyFAKE7" == res["port"]
    assert Path(cmd[cmd.index("-d") + 1]) == Path(res["project"])
    assert res["budget"]["runtime"] == "native" and res["budget"]["mode"] == "harness"


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs a host g++")
def test_arduino_port_timer_led_button_serial_on_the_host(tmp_path):
    """The port's micros() path, run: 64-bit ticks across wraps, active-low LED, active-low
    button with pull-up, a serial write that must loop on short writes, no camera."""
    from tinysmile.resources import firmware_dir

    fw = firmware_dir()
    exe = tmp_path / "port_check"
    cmd = ["g++", "-std=c++11", "-O1", "-g", "-Wall", "-Wextra", "-Werror"]
    cmd += ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    cmd += [f"-I{STUB}", f"-I{fw / 'port'}", "-DTSM_PORT_COUNTER_MICROS", "-DTSM_PORT_BAUD=115200u"]
    cmd += ["-DTSM_PORT_LED_PIN=13", "-DTSM_PORT_LED_ON=LOW", "-DTSM_PORT_BUTTON_PIN=2"]
    cmd += ["-DTSM_PORT_BUTTON_PRESSED=LOW", "-o", str(exe)]
    cmd += [
        str(STUB / "arduino_host_check.cpp"),
        str(fw / "port" / "arduino" / "tsm_port_arduino.cpp"),
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("arm-none-eabi-g++") is None, reason="needs arm-none-eabi-g++")
@pytest.mark.skipif(
    ARDUINO is None, reason=f"needs the TFLite Micro Arduino library at {ARDUINO_LIB}"
)
@pytest.mark.parametrize("mode", MODES)
def test_tflm_sketch_compiles_against_the_real_tflm_headers(projects, mode, tmp_path):
    """The registry path: the sketch and the TFLM binding (tsm_tflm.cpp with the generated
    model_ops.h and model_data.h) against the headers of the Arduino library the boards'
    lib_deps name, with its defines; only Arduino.h is a stub (no core offline). Per board
    (its CPU), two compilers at a time."""
    jobs = {}
    with ThreadPoolExecutor(max_workers=2) as ex:
        for board_id in REAL:
            board = load_board(board_id)
            project = projects[board_id, "tflm", mode]
            cpu = CPUS["cortex-m0plus"] if board["core"] == "cortex-m0plus" else CPUS["cortex-m4f"]
            for i, src in enumerate(("main.cpp", "tsm/tsm_tflm.cpp")):
                cmd = ["arm-none-eabi-g++", *cpu, *tflm_lib.CXX_FLAGS, "-O2", "-Wall", "-Werror"]
                cmd += [f"-I{STUB}", *[f"-I{d}" for d in ARDUINO.include_dirs]]
                cmd += [f"-I{project.dir / 'include'}", *[f"-D{d}" for d in ARDUINO.defines]]
                out = tmp_path / f"{board_id}-{i}.o"
                cmd += ["-c", str(project.dir / "src" / src), "-o", str(out)]
                jobs[board_id, src] = ex.submit(
                    subprocess.run, cmd, capture_output=True, text=True, timeout=300, check=False
                )
    for (board_id, src), job in jobs.items():
        proc = job.result()
        assert proc.returncode == 0, f"{board_id} {src}: {proc.stderr[-1500:]}"


@pytest.mark.skipif(LIB is None, reason=f"needs TFLite Micro at {TFLM_LIB}")
def test_real_board_takes_a_local_tflmtflm_library(tmp_path, monkeypatch):
    """--tflm-lib on a real board: the library's parts in place instead of the registry's
    library, its include roots on the parts and on our own sources, the TFLite Micro
    defines but not ARDUINO (the core defines it), parts' files exactly the ones the
    resolver needs; the binding compiles with the flags platformio.ini gives it."""
    from platformio.project.config import ProjectConfig

    monkeypatch.setenv(tflm_lib.CACHE_ENV_VAR, str(tmp_path / "cache"))
    board = load_board(REAL[0])
    bundle = load_bundle(None)
    project = generate_project(
        bundle, board, tmp_path / "p", "tflm", "harness", tflm_lib_dir=TFLM_LIB
    )
    cfg = ProjectConfig(str(project.dir / "platformio.ini"), parse_extra=False)
    cfg.validate(silent=True)
    libs = cfg.get("env:tinysmile", "lib_deps")
    assert not set(board.platformio["tflm_lib_deps"]) & set(libs)
    parts = [Path(dep.removeprefix("symlink://")) for dep in libs]
    assert all(p.is_relative_to(tmp_path / "cache") for p in parts)
    top, *others = LIB.include_dirs
    roots = [f"-I{d}" for d in others]
    files = set()
    for part in parts:
        manifest = json.loads((part / "library.json").read_text())
        assert manifest["build"]["srcDir"] == str(LIB.src)
        assert manifest["build"]["includeDir"] == str(top)
        assert [f for f in manifest["build"]["flags"] if f.startswith("-I")] == roots
        files |= {f[2:-1] for f in manifest["build"]["srcFilter"][1:]}
    assert all((LIB.src / f).is_file() for f in files)
    # One kernel per op of the model (pooling serves MAX_POOL_2D), none of the others.
    ext = LIB.layout.ext
    kernels = {
        Path(f).stem
        for f in files
        if "/kernels/cmsis_nn/" in f or f.endswith((f"logistic{ext}", f"reshape{ext}"))
    }
    assert kernels == {"conv", "pooling", "fully_connected", "logistic", "reshape"}
    assert not any("peripherals/" in f or "all_ops_resolver" in f for f in files)
    flags = cfg.get("env:tinysmile", "build_flags")
    assert "-DTF_LITE_STATIC_MEMORY" in flags and "-DCMSIS_NN" in flags
    assert "-DARDUINO" not in flags
    src_flags = cfg.get("env:tinysmile", "build_src_flags")
    assert [f for f in src_flags if f.startswith("-I")] == [f"-I{d}" for d in LIB.include_dirs]
    assert cfg.get("platformio", "build_cache_dir") == str(tmp_path / "cache" / "pio-build-cache")
    if shutil.which("arm-none-eabi-g++") is None:
        return
    # The binding with exactly platformio.ini's flags (ARDUINO as the core would define it).
    cmd = ["arm-none-eabi-g++", *CPUS["cortex-m4f"], *tflm_lib.CXX_FLAGS, "-Wall", "-Werror"]
    cmd += [*flags, *[f for f in src_flags if not f.startswith("-DTSM_PORT")], "-DARDUINO=10819"]
    cmd += [f"-I{STUB}", f"-I{project.dir / 'include'}"]
    cmd += ["-c", str(project.dir / "src" / "tsm" / "tsm_tflm.cpp"), "-o", str(tmp_path / "t.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-1500:]
