"""SysTick under QEMU -icount counts instructions exactly: a firmware whose "model" runs a
loop of exactly two instructions per trip, trip count taken from the input, must report
instruction counts that differ by exactly twice the trip-count difference, including
across SysTick wraps (2^24 ticks). Also runs the harness on the hand-written stand-in model
(no compiler involved)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from device_helpers import standin_layers

from tinysmile.boards import load_board
from tinysmile.resources import firmware_dir, templates_dir

FIXTURES = Path(__file__).resolve().parent / "fixtures"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")),
        reason="needs qemu-system-arm and arm-none-eabi-gcc",
    ),
]


def build_fixture_firmware(out: Path, prefix: str, sizes: tuple[int, int, int]) -> Path:
    """The harness + a fixture model, built directly with arm-none-eabi-gcc."""
    from tinysmile.templating import render

    board = load_board(None)
    out.mkdir(parents=True, exist_ok=True)
    glue = out / "glue.c"
    glue.write_text(
        render(
            "harness/tsm_glue.c.j2",
            prefix=prefix,
            input_size=sizes[0],
            output_size=sizes[1],
            num_layers=sizes[2],
            board_name='"fixture"',
            stack_size=board["stack_bytes"],
            setup="0",
            arena_used="0",
        )
    )
    ld = out / "link.ld"
    ld.write_text(
        render(
            f"{board['template']}/{board['linker_template']}",
            board_id=board.id,
            flash_origin=hex(board["flash_origin"]),
            flash_size=hex(board["flash_bytes"]),
            ram_origin=hex(board["ram_origin"]),
            ram_size=hex(board["ram_bytes"]),
            stack_size=board["stack_bytes"],
        )
    )
    fw = firmware_dir()
    srcs = [
        glue,
        FIXTURES / f"{prefix}_model.c",
        *sorted((fw / "harness").glob("*.c")),
        *sorted((fw / "protocol").glob("*.c")),
        *sorted((fw / "port" / board["port"]).glob("*.c")),
    ]
    elf = out / "fw.elf"
    cmd = [
        "arm-none-eabi-gcc",
        "-std=c99",
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        *board["cflags"],
        "-ffunction-sections",
        "-fdata-sections",
        f"-DTSM_PORT_CPU_HZ={board['clock_hz']}u",
        "-DTSM_PROTO_MAX_PAYLOAD=64u",
        f"-I{fw}",
        f"-I{fw / 'port'}",
        f"-I{fw / 'protocol'}",
        f"-I{fw / 'harness'}",
        f"-I{FIXTURES}",
        *map(str, srcs),
        "-T",
        str(ld),
        "-nostartfiles",
        "--specs=nano.specs",
        "--specs=nosys.specs",
        "-Wl,--gc-sections",
        "-o",
        str(elf),
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)
    assert templates_dir().is_dir()
    return elf


def _session(elf: Path, icount: bool = True):
    from tinysmile.device import emulator
    from tinysmile.device.session import client_for

    board = load_board(None)
    st = emulator.start(board, elf, register=False, icount=icount)
    client = client_for(board, st.port)
    client.handshake()
    return board, st, client


def _close(st, client) -> None:
    from tinysmile.device import emulator

    client.close()
    emulator.kill(st)


def test_instruction_counts_are_exact(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYSMILE_STATE_DIR", str(tmp_path / "state"))
    elf = build_fixture_firmware(tmp_path / "calib", "calib", (4, 4, 1))
    board, st, client = _session(elf)
    try:

        def count(n: int) -> int:
            x = bytes([n & 0xFF, (n >> 8) & 0xFF, n >> 16, 0])
            r = client.infer(x)
            return board.count_between(r.start_ticks, r.end_ticks)

        base = count(0)
        for n in (1, 2, 3, 5, 8, 13, 100, 1001, 65535):
            assert count(n) - base == 2 * n, n
        assert count(7) == count(7)
        # Past SysTick's 24-bit wrap (2^24 ticks = ~10.5M instructions): each wrap runs
        # the wrap-counting interrupt handler, whose few instructions are really executed
        # and so counted; the same number every wrap.
        one_wrap = count(6_000_000) - base - 12_000_000
        assert 0 < one_wrap < 20
        assert count(6_000_001) - base == 12_000_002 + one_wrap
        assert count(12_345_678) - base == 24_691_356 + 2 * one_wrap  # 39.5M ticks: 2 wraps
    finally:
        _close(st, client)


def test_harness_on_the_standin_model(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYSMILE_STATE_DIR", str(tmp_path / "state"))
    elf = build_fixture_firmware(tmp_path / "standin", "standin", (16, 4, 2))
    _, st, client = _session(elf, icount=False)
    try:
        h = client.hello
        assert (h.model_name, h.board, h.input_size, h.output_size, h.num_layers) == (
            "standin",
            "fixture",
            16,
            4,
            2,
        )
        assert (h.input_shape, h.output_shape) == ((1, 4, 4, 1), (1, 4))
        assert (h.input_scale, h.input_zero_point, h.output_scale, h.output_zero_point) == (
            0.5,
            -1,
            0.25,
            3,
        )
        rng = np.random.default_rng(5)
        for _ in range(20):
            x = rng.integers(-128, 128, 16).astype(np.int8)
            want = standin_layers(x)
            raw = x.tobytes()
            assert client.infer(raw).output == want[1].tobytes()
            assert client.layer(raw, 0) == want[0].tobytes()
            assert client.layer(raw, 1) == want[1].tobytes()
        # Requests the harness must refuse, not act on.
        from tinysmile.device.client import DeviceError

        with pytest.raises(DeviceError, match="input size"):
            client.infer(b"\x00" * 15)
        with pytest.raises(DeviceError, match="out of range"):
            client.layer(raw, 2)
        # Garbage on the line between requests is skipped by the device's parser.
        client.transport.write(b"\xa5\x5a\x02\x07\xff\xff\x00\x00" + bytes(range(256)))
        assert client.infer(raw).output == want[1].tobytes()
    finally:
        _close(st, client)
