"""Fault injection between the protocol client and a device: resynchronise or fail with a
clear timeout, never return a wrong result, never hang."""

from __future__ import annotations

import os
import random
import select
import threading
import time

import numpy as np
import pytest
from device_helpers import FakeDevice, LoopbackTransport, standin_layers

from tinysmile.device import protocol as p
from tinysmile.device.client import DeviceClient, DeviceError, DeviceTimeout
from tinysmile.errors import TinysmileError

TIMEOUT = 0.3


def _x(seed: int) -> bytes:
    return np.random.default_rng(seed).integers(-128, 128, 16).astype(np.int8).tobytes()


def _expected(x: bytes) -> bytes:
    return standin_layers(np.frombuffer(x, dtype=np.int8))[-1].tobytes()


def _client(**device_kw) -> tuple[DeviceClient, FakeDevice]:
    t = LoopbackTransport()
    dev = FakeDevice(t, **device_kw)
    return DeviceClient(t, timeout=TIMEOUT, retries=2), dev


def garbage_around(data: bytes, idx: int) -> bytes:
    return b"\x00\xa5\x13\xa5\x5a\xff" + data + b"\xa5\x5a\x02"


def flip_bit_in(which: set[int]):
    def fault(data: bytes, idx: int) -> bytes:
        if idx in which:
            b = bytearray(data)
            b[len(b) // 2] ^= 0x10
            return bytes(b)
        return data

    return fault


def truncate_in(which: set[int]):
    def fault(data: bytes, idx: int) -> bytes:
        return data[: len(data) - 3] if idx in which else data

    return fault


def test_clean_exchange():
    c, _ = _client()
    hello = c.handshake()
    assert (hello.input_size, hello.output_size, hello.num_layers) == (16, 4, 2)
    x = _x(0)
    assert c.infer(x).output == _expected(x)
    assert c.layer(x, 0) == standin_layers(np.frombuffer(x, np.int8))[0].tobytes()
    assert c.retried == 0


def test_garbage_between_frames_is_skipped():
    c, _ = _client(faults=[garbage_around])
    c.handshake()
    for i in range(10):
        x = _x(i)
        assert c.infer(x).output == _expected(x)
    assert c.retried == 0


@pytest.mark.parametrize(
    "fault", [flip_bit_in({1, 4}), truncate_in({1, 4})], ids=["flipped-bit", "truncated"]
)
def test_corrupted_reply_is_retried_never_used(fault):
    c, _ = _client(faults=[fault])
    c.handshake()
    for i in range(6):
        x = _x(i)
        assert c.infer(x).output == _expected(x)
    assert c.retried == 2


def test_late_reply_is_discarded_and_the_next_answer_is_right():
    # Request 1's reply arrives after the client gave up on it; the retry (request 2) is
    # answered; the stale reply then lands while request 3 waits and must be ignored.
    c, _ = _client(delay={1: TIMEOUT * 1.5})
    c.handshake()
    x1, x2 = _x(1), _x(2)
    assert c.infer(x1).output == _expected(x1)
    time.sleep(TIMEOUT)
    assert c.infer(x2).output == _expected(x2)
    assert c.retried == 1


def test_silent_device_times_out_clearly():
    c, dev = _client(silent=True)
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeout, match="no valid reply to HELLO.*3 attempts"):
        c.handshake()
    elapsed = time.monotonic() - t0
    assert dev.requests == 3
    assert elapsed < 3 * TIMEOUT + 1.0


def test_reset_during_infer_is_resent():
    c, _ = _client(reset_before={1})
    c.handshake()
    x = _x(5)
    assert c.infer(x).output == _expected(x)
    assert c.resets_seen == 1


def test_reset_between_infer_and_layer_reinfers():
    # The device lost its input: LAYER must not answer from stale memory, and the client
    # must get the layer for *this* input.
    c, _ = _client(reset_before={2})
    c.handshake()
    x = _x(6)
    c.infer(x)
    assert c.layer(x, 1) == _expected(x)
    assert c.resets_seen == 1


def test_reply_for_another_input_is_never_accepted():
    def wrong_input(data: bytes, idx: int) -> bytes:
        frames = p.FrameParser().feed(data)
        f = frames[0]
        if f.type == p.MSG_INFER | p.MSG_REPLY:
            # A well-formed reply, CRCs fine, computed on some other input.
            payload = (f.payload[0] ^ 1).to_bytes(1, "little") + f.payload[1:]
            return p.encode_frame(f.type, f.seq, payload)
        return data

    c, _ = _client(faults=[wrong_input])
    c.handshake()
    with pytest.raises(TinysmileError, match="another input"):
        c.infer(_x(7))


def test_device_error_is_reported():
    c, _ = _client()
    c.handshake()
    with pytest.raises(DeviceError, match="input size"):
        c.infer(b"\x00" * 3)


def test_random_fault_storm_never_gives_a_wrong_result():
    rng = random.Random(99)

    def storm(data: bytes, idx: int) -> bytes | None:
        r = rng.random()
        if r < 0.1:
            return None  # lost
        if r < 0.2:
            b = bytearray(data)
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            return bytes(b)
        if r < 0.3:
            return data[: rng.randrange(len(data))]
        if r < 0.4:
            return rng.randbytes(rng.randrange(20)) + data
        return data

    c, _ = _client(faults=[storm], reset_before={7, 30})
    c.retries = 6
    c.handshake()
    right = 0
    for i in range(40):
        x = _x(100 + i)
        try:
            got = c.infer(x).output
        except DeviceTimeout:
            continue
        assert got == _expected(x)
        right += 1
    assert right >= 35


class PtyDevice:
    """FakeDevice behind a real pseudo-terminal: the client opens the other end with pyserial."""

    def __init__(self, **kw) -> None:
        import tty

        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        self.dev = FakeDevice(self, **kw)
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def deliver(self, data: bytes) -> None:
        os.write(self.master, data)

    def _run(self) -> None:
        while not self.stop:
            r, _, _ = select.select([self.master], [], [], 0.05)
            if r:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    return
                self.dev.receive(data)

    def close(self) -> None:
        self.stop = True
        self.thread.join(2)
        os.close(self.master)
        os.close(self._slave)


@pytest.fixture
def pty_device(request):
    kw = getattr(request, "param", {})
    d = PtyDevice(**kw)
    yield d
    d.close()


@pytest.mark.parametrize(
    "pty_device",
    [{"faults": [flip_bit_in({2}), truncate_in({5}), garbage_around], "delay": {8: 0.6}}],
    indirect=True,
)
def test_faults_over_a_real_pty(pty_device):
    from tinysmile.device.transport import SerialTransport

    c = DeviceClient(SerialTransport(pty_device.path), timeout=0.4, retries=2)
    try:
        c.handshake()
        for i in range(8):
            x = _x(200 + i)
            assert c.infer(x).output == _expected(x)
        assert c.retried >= 3
    finally:
        c.close()


@pytest.mark.parametrize("pty_device", [{"silent": True}], indirect=True)
def test_silent_device_over_a_real_pty(pty_device):
    from tinysmile.device.transport import SerialTransport

    c = DeviceClient(SerialTransport(pty_device.path), timeout=0.3, retries=1)
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeout):
        c.handshake()
    assert time.monotonic() - t0 < 2.0
    c.close()


def test_other_protocol_version_is_refused():
    c, _ = _client(version=2)
    with pytest.raises(TinysmileError, match="protocol 2.*flash it again"):
        c.handshake()
