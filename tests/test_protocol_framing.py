"""The framing, host side, and its equivalence with the device's C parser."""

from __future__ import annotations

import random
import struct
import subprocess
import zlib

import pytest
from device_helpers import FUZZ, build_host, host_cc
from hypothesis import given, settings
from hypothesis import strategies as st

from tinysmile.device import protocol as p
from tinysmile.resources import firmware_dir


def test_known_frame_bytes():
    # Pinned so that a change to the wire format is a visible, deliberate change.
    frame = p.encode_frame(p.MSG_INFER, 7, b"\x01\x02")
    head = bytes([0x02, 7, 2, 0])
    hcrc = p.crc16(head)
    assert frame[:2] == b"\xa5\x5a"
    assert frame[2:6] == head
    assert frame[6:8] == struct.pack("<H", hcrc)
    assert frame[8:10] == b"\x01\x02"
    assert frame[10:] == struct.pack("<I", zlib.crc32(frame[2:10]))
    assert p.crc16(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE check value


@given(
    st.lists(
        st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=300)), max_size=8
    ),
    st.integers(1, 64),
)
@settings(max_examples=200, deadline=None)
def test_roundtrip_any_chunking(frames, chunk):
    stream = b"".join(p.encode_frame(t, s, pl) for t, s, pl in frames)
    parser = p.FrameParser()
    got = []
    for i in range(0, len(stream), chunk):
        got += parser.feed(stream[i : i + chunk])
    assert [(f.type, f.seq, f.payload) for f in got] == frames
    assert parser.dropped == 0


def test_garbage_between_frames_is_skipped():
    a = p.encode_frame(1, 1, b"abc")
    b = p.encode_frame(2, 2, b"def")
    garbage = b"\x00\xa5\xa5\x5a\x13\xff" * 5
    got = p.FrameParser().feed(garbage + a + garbage + b + garbage)
    assert [(f.type, f.payload) for f in got] == [(1, b"abc"), (2, b"def")]


@pytest.mark.parametrize("bit", range(0, 8 * 14, 5))
def test_flipped_bit_is_never_accepted(bit):
    a = bytearray(p.encode_frame(3, 9, b"hello!"))
    a[2 + bit // 8] ^= 1 << (bit % 8)
    b = p.encode_frame(4, 10, b"next")
    got = p.FrameParser().feed(bytes(a) + b)
    assert [(f.type, f.seq, f.payload) for f in got] == [(4, 10, b"next")]


def test_truncated_frame_does_not_swallow_the_next():
    a = p.encode_frame(1, 1, bytes(200))[:50]
    b = p.encode_frame(2, 2, b"x" * 10)
    c = p.encode_frame(3, 3, b"y" * 300)  # enough bytes for a's claimed length to run out
    got = p.FrameParser().feed(a + b + c)
    assert [(f.type, f.seq) for f in got] == [(2, 2), (3, 3)]


def test_oversized_length_is_refused_at_once():
    head = struct.pack("<BBH", 2, 5, 5000)
    bogus = p.SOF + head + struct.pack("<H", p.crc16(head))
    good = p.encode_frame(1, 6, b"ok")
    parser = p.FrameParser(max_payload=4096)
    got = parser.feed(bogus + good)
    assert [(f.seq, f.payload) for f in got] == [(6, b"ok")]
    assert parser.bad_length == 1


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    if host_cc() is None:
        pytest.skip("no host C compiler")
    out = tmp_path_factory.mktemp("twin") / "twin"
    return build_host(
        out,
        [FUZZ / "tsm_protocol_twin.c", firmware_dir() / "protocol" / "tsm_protocol.c"],
        defines={"TSM_PROTO_MAX_PAYLOAD": "4096u"},
    )


def _stream(rng: random.Random) -> bytes:
    parts = []
    for _ in range(rng.randrange(1, 10)):
        kind = rng.randrange(5)
        frame = bytearray(
            p.encode_frame(
                rng.randrange(256),
                rng.randrange(256),
                rng.randbytes(rng.choice([0, 1, 17, 300, 4096])),
            )
        )
        if kind == 0:
            parts.append(
                bytes(
                    rng.choice([0xA5, 0x5A, rng.randrange(256)]) for _ in range(rng.randrange(40))
                )
            )
            continue
        if kind == 1:
            frame[rng.randrange(2, len(frame))] ^= 1 << rng.randrange(8)
        elif kind == 2:
            frame = frame[: rng.randrange(len(frame))]
        parts.append(bytes(frame))
    return b"".join(parts) + bytes(4200)


def test_host_and_device_parsers_agree(twin):
    rng = random.Random(1234)
    for _ in range(60):
        data = _stream(rng)
        out = (
            subprocess.run([str(twin)], input=data, capture_output=True, check=True, timeout=60)
            .stdout.decode()
            .splitlines()
        )
        mine = [
            f"{f.type} {f.seq} {f.payload.hex()}"
            for f in p.FrameParser(max_payload=4096).feed(data)
        ]
        assert out == mine


def _hello_head() -> bytes:
    """HELLO's layout up to and including arena_used (firmware/protocol/tsm_hello.h), with
    numbers chosen by hand."""

    def s(text: str) -> bytes:
        return bytes([len(text)]) + text.encode()

    return (
        struct.pack("<HIIIIII", 1, 1024, 1000, 4096, 2000, 2304, 1)
        + struct.pack("<B4I", 4, 1, 48, 48, 1)
        + struct.pack("<B4I", 2, 1, 1, 0, 0)
        + struct.pack("<fifiH", 0.5, -128, 0.25, 3, 9)
        + s("qemu-cortex-m4")
        + s("smile")
        + s("ab" * 32)
        + struct.pack("<I", 1500)
    )


def test_hello_tells_the_app_camera_and_finder_apart_from_the_harness():
    """The harness stops after arena_used; the app adds its camera frame and its finder's
    hash (empty: none), the tail `pi run --mcu` reads to send whole frames or crops."""
    head = _hello_head()
    h = p.decode_hello(head)
    assert (h.input_shape, h.output_shape, h.model_sha256) == ((1, 48, 48, 1), (1, 1), "ab" * 32)
    assert h.arena_used == 1500 and h.camera is None and h.finder_sha256 is None
    app = p.decode_hello(head + struct.pack("<HH", 320, 240) + bytes([64]) + b"cd" * 32)
    assert app.camera == (320, 240) and app.finder_sha256 == "cd" * 32
    bare = p.decode_hello(head + struct.pack("<HH", 0, 0) + bytes([0]))
    assert bare.camera == (0, 0) and bare.finder_sha256 == ""
    with pytest.raises(p.ProtocolError):
        p.decode_hello(head + struct.pack("<HH", 320, 240) + bytes([64]) + b"cd")  # cut short
