"""Board files, project generation, fit checks and the offline PlatformIO step (no QEMU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tinysmile.boards import Board, list_boards, load_board
from tinysmile.compiler.clits import c_string
from tinysmile.device import pio
from tinysmile.device.budget import check_budget, native_budget
from tinysmile.errors import TinysmileError
from tinysmile.resources import boards_dir


def test_emulated_board_file():
    b = load_board("qemu-cortex-m4")
    assert "qemu-cortex-m4" in list_boards()
    assert b.emulated and b.qemu["machine"] == "mps2-an386"
    assert b["clock_hz"] == 25_000_000
    assert (boards_dir() / b["platformio"]["platform"] / "platform.json").is_file()


def test_unknown_board_is_a_user_error():
    with pytest.raises(TinysmileError, match="unknown board 'nope'"):
        load_board("nope")


def test_no_board_name_in_python():
    root = Path(__file__).resolve().parent.parent / "tinysmile"
    for board in list_boards():
        for py in root.rglob("*.py"):
            assert board not in py.read_text(), f"{py} names board {board}"


@pytest.mark.parametrize("instructions", [0, 1, 2, 3, 4, 5, 7, 8, 1000, 123457, 10**7 + 3])
def test_ticks_to_instructions_is_exact(instructions):
    # SysTick at 25 MHz, one instruction = 64 ns: ticks = floor(instructions * 1.6).
    b = load_board("qemu-cortex-m4")
    ticks = instructions * 64 * 25_000_000 // 10**9
    assert b.ticks_to_count(ticks) == instructions


def test_real_board_counts_cycles():
    b = Board("x", Path("x.toml"), {"clock_hz": 64_000_000})
    assert b.ticks_to_count(12345) == 12345
    assert b.counter_unit == "cycles"


def _report(arena: int, weights: int) -> dict:
    return {
        "arena_bytes": arena,
        "weights_bytes": weights,
        "input": {"shape": [1, 64, 64, 1]},
        "output": {"shape": [1, 1]},
        "layers": [{}] * 4,
    }


def test_fit_check_refuses_with_numbers():
    """Refusals name the numbers; the estimates themselves are checked against the linker's
    section sizes of built firmware (test_device_emulator, test_device_tflm)."""
    b = load_board("qemu-cortex-m4")
    check_budget(native_budget(_report(100_000, 100_000), b))
    with pytest.raises(
        TinysmileError, match=r"needs 4,2\d\d,\d\d\d bytes of RAM \(arena 4,194,304"
    ):
        check_budget(native_budget(_report(b["ram_bytes"], 10), b))
    with pytest.raises(TinysmileError, match=r"needs 5,0\d\d,\d\d\d bytes of flash .* 4,194,304"):
        check_budget(native_budget(_report(10, 5_000_000), b))


def test_c_string_escapes():
    # One escaping rule for every generated C string (compiler and device projects alike).
    assert c_string('a"b\\c') == '"a\\"b\\\\c"'
    assert c_string("é") == '"\\303\\251"'
    assert c_string("a\n1") == '"a\\0121"'


def test_pio_version_mapping():
    assert pio.pio_version_of("4.11.1") == "4.41101.0"
    assert pio.pio_version_of("4.6.0") == "4.40600.0"
    assert pio.scons_version_for("~4.41101.0") == "4.11.1"
    assert pio.satisfies("4.41101.0", "~4.41101.0")
    assert not pio.satisfies("4.40600.0", "~4.41101.0")


def test_ensure_scons_is_idempotent_and_recognised(tmp_path, monkeypatch):
    monkeypatch.setenv("PLATFORMIO_CORE_DIR", str(tmp_path))
    first = pio.ensure_scons(check_network=False)
    assert first.startswith("installed tool-scons")
    pdir = tmp_path / "packages" / "tool-scons"
    meta = json.loads((pdir / ".piopm").read_text())
    assert meta["spec"]["owner"] == "platformio" and meta["spec"]["name"] == "tool-scons"
    assert pio.ensure_scons(check_network=False).startswith("tool-scons")  # second: no-op
    # PlatformIO itself must see it as its installed core package (no registry lookup).
    code = (
        "from platformio.package.manager.core import get_core_package_dir;"
        "print(get_core_package_dir('tool-scons', auto_install=False))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PLATFORMIO_CORE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert out.stdout.strip() == str(pdir), out.stderr
    # Its scons.py runs SCons.
    ver = subprocess.run(
        [sys.executable, str(pdir / "scons.py"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "SCons" in ver.stdout


def test_cli_user_errors_and_stop(tmp_path, monkeypatch, capsys):
    from tinysmile.cli import main

    monkeypatch.setenv("TINYSMILE_STATE_DIR", str(tmp_path))
    assert main(["stop"]) == 0
    assert "no emulator running" in capsys.readouterr().out
    assert main(["flash", str(tmp_path / "missing.tflite")]) == 2
    assert "error: " in capsys.readouterr().err
    model = tmp_path / "m.tflite"
    model.write_bytes(b"not a model")
    assert main(["verify", str(model), "--board", "nope"]) == 2
    assert "unknown board 'nope'" in capsys.readouterr().err


def test_generate_project_refuses_a_model_too_big_for_the_board(tmp_path):
    from tinysmile.bundle import load_bundle
    from tinysmile.device.project import generate_project

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from models import build_mobilenet_block

    model = tmp_path / "m.tflite"
    model.write_bytes(build_mobilenet_block())
    real = load_board("qemu-cortex-m4")
    tiny = Board("tiny", real.path, {**real.data, "ram_bytes": 20_000})
    with pytest.raises(
        TinysmileError, match=r"needs [\d,]+ bytes of RAM \(arena [\d,]+.*has 20,000"
    ):
        generate_project(load_bundle(model), tiny, tmp_path / "proj")
    assert not (tmp_path / "proj" / "platformio.ini").exists()


def test_port_autodetect_by_usb_ids(monkeypatch):
    from types import SimpleNamespace

    from serial.tools import list_ports

    from tinysmile.device.transport import find_ports

    ports = [
        SimpleNamespace(device="/dev/ttyACM1", vid=0x2341, pid=0x0058),
        SimpleNamespace(device="/dev/ttyS0", vid=None, pid=None),
        SimpleNamespace(device="/dev/ttyACM0", vid=0x2E8A, pid=0x000A),
    ]
    monkeypatch.setattr(list_ports, "comports", lambda: ports)
    assert find_ports(["2E8A:000a"]) == ["/dev/ttyACM0"]
    assert find_ports(["2341:0058", "2e8a:000a"]) == ["/dev/ttyACM0", "/dev/ttyACM1"]
    assert find_ports(["1234:5678"]) == []
