"""The SparkFun Apollo3 boards linked for real, offline: `flash --dry-run` generates the
project and links it with PlatformIO from a fresh state folder against SparkFun's Arduino
core and the apollo3blue platform in ../shared/platformio (no registry), prints the linker's
sizes and the upload command; the uploaders fail in one line; our sources got -O2 inside the
core's -Os build; a missing or wrong core and a missing port are one line each.

One build per board, shared by the module (each links in about 40 s on one core)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from device_helpers import APOLLO3_CORE, HM01B0_LIB, TFLM, TFLM_LIB

from tinysmile.boards import list_boards, load_board
from tinysmile.cli import main

APOLLO3 = [b for b in list_boards() if load_board(b).get("local")]
HAVE_CORE = (APOLLO3_CORE / "cores" / "arduino").is_dir()
needs_core = pytest.mark.skipif(not HAVE_CORE, reason=f"needs the Apollo3 core at {APOLLO3_CORE}")
PORT = "/dev/ttyTSM-NOT-THERE"


def _snapshot(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A fresh PlatformIO state folder and tinysmile state: nothing installed before. The
    object cache stays the session's (tinysmile's cache folder): the core's and TFLite
    Micro's objects are compiled once per machine, as for a user."""
    root = tmp_path_factory.mktemp("apollo3")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLATFORMIO_CORE_DIR", str(root / "platformio"))
        mp.setenv("TINYSMILE_STATE_DIR", str(root / "state"))
        mp.setenv("TINYSMILE_APOLLO3_CORE", str(APOLLO3_CORE))
        mp.setenv("TINYSMILE_HM01B0_LIB", str(HM01B0_LIB))
        mp.delenv("TINYSMILE_APOLLO3_PLATFORM", raising=False)
        yield root


def _dry_run(board_id: str, *extra: str) -> dict:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["flash", "--board", board_id, "--dry-run", "--port", PORT, "--json", *extra])
    assert rc == 0, buf.getvalue()
    return json.loads(buf.getvalue())


# Each board in both modes, each runtime. TFLite Micro compiles once per board and define
# set (the app's differ from the harness's), 4 CPU-minutes cold: one tflm build here (the
# Edge's harness, which verify --no-board checks); the others are linked by hand (docs/boards.md).
BUILDS = [
    ("sparkfun-edge", "native", "harness"),
    ("sparkfun-redboard-artemis-atp", "native", "harness"),
    ("sparkfun-edge", "native", "app"),
    ("sparkfun-redboard-artemis-atp", "native", "app"),
    ("sparkfun-edge", "tflm", "harness"),
]


@pytest.fixture(scope="module")
def linked(env):
    """`flash --dry-run --json` for each Apollo3 board, the native harness of the bundled
    model; and what the shared folders looked like before."""
    before = _snapshot(APOLLO3_CORE.parent)
    out = {board_id: _dry_run(board_id) for board_id in APOLLO3}
    return out, before


@pytest.fixture(scope="module")
def linked_all(linked):
    """The rest of BUILDS (the app with the face finder and the HM01B0 library; tflm with
    the newest TFLite Micro tree)."""
    res, _ = linked
    out = {(b, "native", "harness"): res[b] for b in APOLLO3}
    for board_id, runtime, mode in BUILDS:
        if (board_id, runtime, mode) in out:
            continue
        if runtime == "tflm" and TFLM is None:
            continue
        extra = ["--runtime", runtime, "--mode", mode]
        extra += ["--tflm-lib", str(TFLM_LIB)] if runtime == "tflm" else []
        out[board_id, runtime, mode] = _dry_run(board_id, *extra)
    return out


def _size_a(elf: str) -> dict[str, tuple[int, int]]:
    """Section -> (size, address) as binutils' size reports them (not tinysmile's reader)."""
    text = subprocess.run(
        ["arm-none-eabi-size", "-A", "-d", elf], capture_output=True, text=True, check=True
    ).stdout
    rows = (re.match(r"^(\.\S+)\s+(\d+)\s+(\d+)", ln) for ln in text.splitlines())
    return {m.group(1): (int(m.group(2)), int(m.group(3))) for m in rows if m}


def test_two_apollo3_boards_build_from_local_folders():
    assert sorted(APOLLO3) == ["sparkfun-edge", "sparkfun-redboard-artemis-atp"]


@pytest.mark.slow
@needs_core
def test_dry_run_links_offline_with_the_linkers_sizes(linked, env):
    res, before = linked
    for board_id, r in res.items():
        board = load_board(board_id)
        elf, binary = Path(r["elf"]), Path(r["bin"])
        assert elf.name == "program" and elf.is_file() and binary.is_file()
        sections = _size_a(r["elf"])
        # The app sits where the board's bootloader starts it: asb 0xC000, svl 0x10000.
        assert sections[".text"][1] == int(board["upload"]["address"], 16)
        flash = sections[".text"][0] + sections[".data"][0]
        ram = sum(sections[s][0] for s in (".data", ".bss", ".stack"))
        assert (r["flash_bytes"], r["ram_bytes"]) == (flash, ram)
        assert binary.stat().st_size == flash  # objcopy -O binary: .text then .data's image
        assert sections[".stack"][0] == 80 * 1024 == board["stack_bytes"]
        # The linker's figures against the pre-build estimate they replace: with the board
        # files' framework figures (a Serial-only sketch, linked) RAM is within 1 KiB (the
        # port's and harness's few statics are not in the estimate); flash stays above (the
        # estimate counts every kernel, the link only the model's).
        budget = r["budget"]
        assert abs(budget["ram_total"] - ram) < 1024, (ram, budget["ram"])
        assert flash <= budget["flash_total"] < flash + 16 * 1024, (flash, budget["flash"])
        log = (Path(r["project"]) / "pio-build.log").read_text()
        assert "Downloading" not in log and "registry" not in log.lower()
    # The platform went into the fresh state folder (a copy), the packages are links.
    assert (env / "platformio" / "platforms" / "apollo3blue" / "platform.json").is_file()
    assert (env / "platformio" / "packages" / "framework-arduinoapollo3.pio-link").is_file()
    # Nothing was written into the shared folders, and the generated packages are in the cache.
    assert _snapshot(APOLLO3_CORE.parent) == before
    from tinysmile.device.tflm_lib import cache_dir

    cache = cache_dir() / "pio-local"
    assert (cache / "toolchain-gccarmnoneeabi" / "package.json").is_file()
    assert (cache / "lib" / "libarm_cortexM4lf_math.a").read_bytes() == b"!<arch>\n"


@pytest.mark.slow
@needs_core
def test_upload_commands_name_protocol_address_and_port(linked):
    res, _ = linked
    edge = res["sparkfun-edge"]
    cmd = edge["upload_command"]
    assert cmd[2] == str(APOLLO3_CORE / "tools" / "ambiq" / "ambiq_bin2board.py")
    assert cmd[cmd.index("--load-address-wired") + 1] == "0xC000"
    assert cmd[cmd.index("-port") + 1] == PORT
    assert cmd[cmd.index("--bin") + 1] == edge["bin"]
    assert cmd[cmd.index("-b") + 1] == "115200"
    assert edge["upload"] == {"protocol": "asb", "address": "0xC000", "port": PORT}
    atp = res["sparkfun-redboard-artemis-atp"]
    cmd = atp["upload_command"]
    assert cmd[2] == str(APOLLO3_CORE / "tools" / "artemis" / "artemis_svl.py")
    assert cmd[3] == PORT and cmd[cmd.index("-f") + 1] == atp["bin"]
    assert atp["upload"] == {"protocol": "svl", "address": "0x10000", "port": PORT}


@pytest.mark.slow
@needs_core
def test_a_dry_run_without_a_board_names_a_placeholder_port(linked, monkeypatch, capsys):
    """--dry-run touches no port, so no board attached is no error: the command names PORT
    (the project is linked already: PlatformIO's rebuild is incremental)."""
    from tinysmile.device import transport
    from tinysmile.device.commands import NO_PORT

    monkeypatch.setattr(transport, "find_ports", lambda ids: [])
    assert main(["flash", "--board", "sparkfun-edge", "--dry-run", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    cmd = res["upload_command"]
    assert res["port"] is None and res["upload"]["port"] is None
    assert cmd[cmd.index("-port") + 1] == NO_PORT == "PORT"
    assert res["elf"] == linked[0]["sparkfun-edge"]["elf"]


@pytest.mark.slow
@needs_core
def test_uploaders_that_exit_0_on_a_missing_port_fail_in_one_line(linked, capsys):
    """The core's own scripts, run for real against a port that does not exist: both exit
    0; flash reads what they print. (The build is PlatformIO's cached one: no relink.)"""
    for board_id, words in (
        ("sparkfun-edge", "Com Port not found"),
        ("sparkfun-redboard-artemis-atp", "not found"),
    ):
        assert main(["flash", "--board", board_id, "--port", PORT]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        proto = load_board(board_id)["upload"]["protocol"]
        assert err.startswith(f"error: the {proto} upload to {PORT} failed: ") and words in err


@pytest.mark.slow
@needs_core
def test_our_sources_are_compiled_at_O2_inside_the_cores_Os(linked):
    """Read from the linked ELF's DWARF: each compile unit records gcc's options."""
    from elftools.elf.elffile import ELFFile

    res, _ = linked
    with open(res["sparkfun-edge"]["elf"], "rb") as fh:
        dwarf = ELFFile(fh).get_dwarf_info()
        producers = {}
        for cu in dwarf.iter_CUs():
            top = cu.get_top_DIE()
            name = top.attributes["DW_AT_name"].value.decode()
            producers[name] = top.attributes["DW_AT_producer"].value.decode()

    def opts(suffix: str) -> list[str]:
        (name,) = [n for n in producers if n.endswith(suffix)]
        return re.findall(r"(?<!\S)-O\w*", producers[name])

    for ours in ("src/tsm/tsm_conv2d.c", "src/tsm/tsm_harness.c", "src/model/model_model.c"):
        assert opts(ours) == ["-O2"], ours
    assert opts("src/tsm/tsm_port_arduino.cpp") == ["-O2"]
    # The core's own files keep its -Os.
    assert opts("ard_sup/uart/ap3_uart.cpp") == ["-Os"]


@needs_core
def test_missing_or_wrong_core_and_missing_port_are_one_line(env, capsys, monkeypatch, tmp_path):
    from tinysmile.device import transport

    monkeypatch.delenv("TINYSMILE_APOLLO3_CORE")
    assert main(["flash", "--board", "sparkfun-edge", "--dry-run", "--port", PORT]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "pass --core DIR or set $TINYSMILE_APOLLO3_CORE" in err
    # A folder that is not the core (its parent, say).
    args = ["flash", "--board", "sparkfun-edge", "--dry-run", "--port", PORT]
    assert main([*args, "--core", str(APOLLO3_CORE.parent)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"--core {APOLLO3_CORE.parent} is not an Arduino core for board sparkfun-edge" in err
    assert main([*args, "--core", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err
    # No --port and no board on USB: refused before anything is built.
    from tinysmile.device import project

    monkeypatch.setattr(transport, "find_ports", lambda ids: [])
    monkeypatch.setattr(project, "generate_project", lambda *a, **k: pytest.fail("built"))
    assert main(["flash", "--board", "sparkfun-edge", "--core", str(APOLLO3_CORE)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "no sparkfun-edge found on USB (looked for 1a86:7523): connect it, or pass --port" in err


@needs_core
def test_compile_board_takes_core_as_flash_does(env, capsys, monkeypatch, tmp_path):
    """`compile --board` writes an Apollo3 project from --core as well as from the variable;
    without either, one line; --core on a board built through the registry, one line."""
    monkeypatch.delenv("TINYSMILE_APOLLO3_CORE")
    args = ["compile", "--board", "sparkfun-edge", "--out"]
    assert main([*args, str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "pass --core DIR or set $TINYSMILE_APOLLO3_CORE" in err
    assert not (tmp_path / "a" / "platformio.ini").exists()
    assert main([*args, str(tmp_path / "b"), "--core", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main([*args, str(tmp_path / "c"), "--core", str(APOLLO3_CORE), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    ini = (tmp_path / "c" / "platformio.ini").read_text()
    assert res["board"] == "sparkfun-edge" and f"symlink://{APOLLO3_CORE.resolve()}" in ini
    other = next(b for b in list_boards() if not load_board(b).get("local"))
    assert main(["compile", "--board", other, "--out", str(tmp_path / "d"), "--core", "x"]) == 2
    err = capsys.readouterr().err
    assert f"--core is for boards built from a local core; {other} is not" in err
    assert len(err.strip().splitlines()) == 1


def test_pyproject_declares_the_uploaders_and_emulators_dependencies():
    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=;\[ ]", d)[0] for d in deps}
    assert {"pyserial", "pycryptodome", "unicorn", "pyelftools", "capstone"} <= names


def test_uploader_scripts_run_under_this_python_without_bytecode():
    """-B: running the core's scripts writes no __pycache__ beside them."""
    from tinysmile.device import upload

    board = load_board("sparkfun-edge")
    cmd = upload.command(board, APOLLO3_CORE, Path("/x.bin"), PORT)
    assert cmd[:2] == [sys.executable, "-B"]


# The command as a user runs it, in its own process: verify never imports TensorFlow.
_RUN = """
import sys
from tinysmile.cli import main
code = main(sys.argv[1:])
assert "tensorflow" not in sys.modules, "TensorFlow was imported"
sys.exit(code)
"""


@pytest.mark.slow
@needs_core
def test_verify_no_board_is_bit_exact_on_the_linked_elf(linked):
    """16 seeded inputs through the linked Edge firmware's model entry on the instruction-set
    emulator, each output byte against LiteRT's reference kernels (the expected values are
    LiteRT's, not tinysmile's)."""
    res, _ = linked
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, "verify", "--board", "sparkfun-edge", "--no-board"]
        + ["--samples", "16", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["ok"] and out["samples"] == out["matched"] == 16 and not out["mismatches"]
    assert out["elf"] == res["sparkfun-edge"]["elf"]


def _flip_weight_byte(elf: Path, out: Path, symbol: str) -> None:
    """A copy of the ELF with the first byte of `symbol` (a weights array) inverted."""
    from elftools.elf.elffile import ELFFile

    data = bytearray(elf.read_bytes())
    with open(elf, "rb") as fh:
        f = ELFFile(fh)
        (sym,) = f.get_section_by_name(".symtab").get_symbol_by_name(symbol)
        sec = f.get_section(sym["st_shndx"])
        offset = sec["sh_offset"] + sym["st_value"] - sec["sh_addr"]
    data[offset] ^= 0xFF
    out.write_bytes(bytes(data))


@pytest.mark.slow
@needs_core
def test_verify_no_board_fails_when_one_weight_byte_of_the_elf_is_flipped(linked, tmp_path):
    import numpy as np

    from tinysmile.bundle import load_bundle
    from tinysmile.compiler.api import compile_in_memory
    from tinysmile.device.verify import random_inputs, verify_linked

    res, _ = linked
    bundle = load_bundle(None)
    report = compile_in_memory(bundle.model_path).report
    inputs = random_inputs(tuple(report["input"]["shape"]), 16, 0)
    elf = Path(res["sparkfun-edge"]["elf"])
    same = tmp_path / "same.elf"
    same.write_bytes(elf.read_bytes())
    assert verify_linked(same, bundle.model_path, report, inputs).ok
    # The last layer's int8 filter: the generated C's weights, in flash.
    flipped = tmp_path / "flipped.elf"
    _flip_weight_byte(elf, flipped, "model_l7_filter")
    bad = verify_linked(flipped, bundle.model_path, report, inputs)
    assert not bad.ok and bad.mismatches and bad.matched < 16
    assert np.any([m.device != m.host for m in bad.mismatches])


@pytest.mark.slow
@needs_core
def test_profile_no_board_counts_every_instruction(linked):
    """The code hook's count is the emulator's own: the call returns within exactly that
    many instructions and not one fewer. The estimate is built from the stated table."""
    import numpy as np

    from tinysmile.device.isasim import HarnessModel, estimate_cycles
    from tinysmile.errors import TinysmileError

    res, _ = linked
    model = HarnessModel(res["sparkfun-edge"]["elf"])
    x = np.random.default_rng(0).integers(-128, 128, size=model.input_size).astype(np.int8)
    prof = model.profile(x.tobytes())
    n = prof["instructions"]
    assert sum(prof["mix"].values()) == n > 100_000
    model.fw.write(model.input, x.tobytes())
    model.fw.call(model.invoke, model.input, model.output, limit=n)
    with pytest.raises(TinysmileError, match="did not return within"):
        model.fw.call(model.invoke, model.input, model.output, limit=n - 1)
    # Every instruction costs at least a cycle; a taken branch at least two.
    assert prof["cycles_estimate"] >= n + prof["taken_branches"]
    assert estimate_cycles(model.fw.stats.mix) == prof["cycles_estimate"]
    # The command: the same count, and milliseconds at the board's 48 MHz; --emulated sets
    # the emulated Cortex-M4's count for the same model beside it (its own build of the same
    # -O2 sources, counted between INFER's stamps: close, not equal).
    buf = io.StringIO()
    args = ["profile", "--board", "sparkfun-edge", "--no-board", "--json", "--emulated"]
    with contextlib.redirect_stdout(buf):
        assert main(args) == 0
    out = json.loads(buf.getvalue())
    assert out["instructions"] == n and out["clock_hz"] == 48_000_000
    assert out["ms_estimate"] == pytest.approx(out["cycles_estimate"] / 48_000)
    assert any("wait states" in a for a in out["assumptions"])
    emu = out["emulated"]
    assert emu["board"] == "qemu-cortex-m4" and emu["unit"] == "instructions"
    assert 0.9 < emu["instructions"] / n == emu["ratio"] < 1.1


def test_profile_emulated_needs_no_board(capsys):
    assert main(["profile", "--board", "sparkfun-edge", "--emulated"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: --emulated sets the emulated board's figure beside --no-board's"


@pytest.mark.slow
@needs_core
def test_every_runtime_and_mode_links(linked_all):
    """The app (camera driver through SparkFun's HM01B0 library on the Edge, the face finder)
    and TFLite Micro link too; each with the linker's sizes inside the board."""
    from tinysmile.device.budget import check_linked

    for (board_id, runtime, mode), r in linked_all.items():
        assert (r["runtime"], r["mode"]) == (runtime, mode)
        sizes = _size_a(r["elf"])
        # C++ (TFLite Micro) adds an unwinding index to flash.
        exidx = sizes.get(".ARM.exidx", (0, 0))[0]
        assert r["flash_bytes"] == sizes[".text"][0] + exidx + sizes[".data"][0]
        check_linked(load_board(board_id), r["memory"], "x")
    want = {b for b in BUILDS if b[1] == "native" or TFLM is not None}
    assert set(linked_all) == want
    edge_app = linked_all["sparkfun-edge", "native", "app"]
    assert edge_app["detector"] == "face_finder"
    syms = subprocess.run(
        ["arm-none-eabi-nm", edge_app["elf"]], capture_output=True, text=True, check=True
    ).stdout
    # SparkFun's Apollo3 implementation of the camera, not its generic fallback.
    assert "hm01b0_cfg" in syms and "tsm_port_camera_capture" in syms


@pytest.mark.slow
@needs_core
@pytest.mark.skipif(TFLM is None, reason=f"needs TFLite Micro at {TFLM_LIB}")
def test_verify_no_board_tflm_is_bit_exact(linked_all):
    """TFLite Micro's setup runs first (the harness's binding calls it), then 16 inputs."""
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, "verify", "--board", "sparkfun-edge", "--no-board"]
        + ["--runtime", "tflm", "--tflm-lib", str(TFLM_LIB), "--samples", "16", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["ok"] and out["matched"] == 16
    assert out["elf"] == linked_all["sparkfun-edge", "tflm", "harness"]["elf"]


def test_a_linked_firmware_that_does_not_fit_is_refused_with_the_linkers_numbers():
    import dataclasses

    from tinysmile.device.budget import check_linked
    from tinysmile.errors import TinysmileError

    board = load_board("sparkfun-edge")
    mem = {"ram_data": 100, "ram_bss": 20_000, "ram_stack": 81_920, "ram_total": 102_020}
    mem |= {"flash_text": 30_000, "flash_rodata": 0, "flash_data_init": 100}
    mem |= {"flash_total": 30_100}
    check_linked(board, mem)
    small = dataclasses.replace(board, data={**board.data, "ram_bytes": 102_019})
    with pytest.raises(
        TinysmileError,
        match=r"needs 102,020 bytes of RAM \(\.data 100, \.bss "
        r"20,000, stack 81,920\) but sparkfun-edge has 102,019: 1 bytes too many",
    ):
        check_linked(small, mem)
    # Flash: above the bootloader (the Edge's app starts at 0xC000).
    tight = dataclasses.replace(board, data={**board.data, "flash_bytes": 0xC000 + 30_099})
    with pytest.raises(TinysmileError, match=r"30,100 bytes of flash .* has 30,099 above"):
        check_linked(tight, mem)
