"""The real device code (harness + parser + stand-in model) built for the host under
ASan/UBSan, talking over pipes, with faults injected on the line in both directions and a
device reset (process restart) mid-run: the client resynchronises or fails with a clear
timeout, and never returns a wrong result."""

from __future__ import annotations

import os
import random
import select
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from device_helpers import build_host, host_cc, standin_layers

from tinysmile.device.client import DeviceClient, DeviceTimeout
from tinysmile.resources import firmware_dir, templates_dir

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def harness_exe(tmp_path_factory):
    if host_cc() is None:
        pytest.skip("no host C compiler")
    from tinysmile.templating import render

    d = tmp_path_factory.mktemp("host-harness")
    glue = d / "glue.c"
    glue.write_text(
        render(
            "harness/tsm_glue.c.j2",
            prefix="standin",
            input_size=16,
            output_size=4,
            num_layers=2,
            board_name='"host"',
            stack_size=0,
            setup="0",
            arena_used="0",
        )
    )
    assert (templates_dir() / "harness" / "tsm_glue.c.j2").is_file()
    fw = firmware_dir()
    sources = [
        glue,
        FIXTURES / "standin_model.c",
        FIXTURES / "tsm_port_host.c",
        *sorted((fw / "harness").glob("*.c")),
        fw / "protocol" / "tsm_protocol.c",
        fw / "protocol" / "tsm_hello.c",
    ]
    return build_host(
        d / "harness",
        sources,
        {"TSM_PROTO_MAX_PAYLOAD": "64u"},
        extra=[f"-I{fw / 'port'}", f"-I{fw / 'harness'}", f"-I{FIXTURES}"],
    )


class ProcessDevice:
    """Transport to the host-built harness, with a fault hook per direction and restart()."""

    def __init__(self, exe: Path) -> None:
        self.exe = exe
        self.to_device = lambda data: data
        self.to_host = lambda data: data
        self.proc: subprocess.Popen | None = None
        self.fresh_reply = False
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(self.exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
        )

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.proc:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            assert self.proc.returncode in (0, -9), f"device crashed: {self.proc.returncode}"
            self.proc.stdout.close()

    def write(self, data: bytes) -> None:
        data = self.to_device(data)
        self.fresh_reply = True
        if data:
            self.proc.stdin.write(data)

    def read(self, max_bytes: int, timeout: float) -> bytes:
        r, _, _ = select.select([self.proc.stdout], [], [], max(timeout, 0))
        if not r:
            return b""
        data = os.read(self.proc.stdout.fileno(), max_bytes)
        # One fault chance per request in each direction: the device writes a reply in
        # several pieces, and how the pipe splits them is up to the scheduler.
        if self.fresh_reply:
            self.fresh_reply = False
            data = self.to_host(data)
        return data

    def close(self) -> None:
        self.stop()


def _x(i: int) -> np.ndarray:
    return np.random.default_rng(i).integers(-128, 128, 16).astype(np.int8)


def test_clean_and_refusals(harness_exe):
    dev = ProcessDevice(harness_exe)
    c = DeviceClient(dev, timeout=1.0, retries=1)
    try:
        h = c.handshake()
        assert (h.model_name, h.board, h.max_payload) == ("standin", "host", 64)
        for i in range(10):
            x = _x(i)
            want = standin_layers(x)
            assert c.infer(x.tobytes()).output == want[1].tobytes()
            assert c.layer(x.tobytes(), 0) == want[0].tobytes()
        # An oversized request (beyond the device's 64-byte bound) is never acted on:
        # the device drops it and the client times out cleanly.
        with pytest.raises(DeviceTimeout):
            c.request(0x02, bytes(100), timeout=0.3)
        # ...and the link still works afterwards.
        assert c.infer(_x(1).tobytes()).output == standin_layers(_x(1))[1].tobytes()
    finally:
        c.close()


def test_faults_both_ways_never_give_a_wrong_result(harness_exe):
    dev = ProcessDevice(harness_exe)
    rng = random.Random(7)

    def corrupt(data: bytes) -> bytes:
        r = rng.random()
        if r < 0.05:
            return rng.randbytes(rng.randrange(1, 30)) + data  # garbage before
        if r < 0.10:
            b = bytearray(data)
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)  # flipped bit
            return bytes(b)
        if r < 0.15:
            return data[: rng.randrange(len(data))]  # truncated
        return data

    dev.to_device = corrupt
    dev.to_host = corrupt
    c = DeviceClient(dev, timeout=0.4, retries=10)
    try:
        c.handshake()
        for i in range(60):
            x = _x(100 + i)
            want = standin_layers(x)
            assert c.infer(x.tobytes()).output == want[1].tobytes()
            if i % 5 == 0:
                assert c.layer(x.tobytes(), 0) == want[0].tobytes()
        assert c.retried > 5  # the faults did bite
    finally:
        dev.to_device = dev.to_host = lambda d: d
        c.close()


def test_device_reset_mid_run(harness_exe):
    dev = ProcessDevice(harness_exe)
    c = DeviceClient(dev, timeout=1.0, retries=2)
    try:
        c.handshake()
        x = _x(3)
        want = standin_layers(x)
        c.infer(x.tobytes())
        dev.restart()  # the board resets: its last input is gone
        time.sleep(0.1)
        # LAYER must not be answered from a lost input; the client re-sends the input.
        assert c.layer(x.tobytes(), 0) == want[0].tobytes()
        assert c.resets_seen >= 1
    finally:
        c.close()
