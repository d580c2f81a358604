"""The serial framing and message layouts, host side (twin of firmware/protocol/).

A frame: ``A5 5A type seq len(u16) hcrc(u16) payload crc32(u32)``, little endian;
hcrc is CRC-16/CCITT-FALSE over type..len, crc32 (zlib's) over everything after the start
marker. The parser here follows the device's rules exactly so one set of tests describes
both: a candidate that fails either CRC or claims too long a payload is dropped up to the
next start marker inside the bytes already held, which are rescanned.
"""

from __future__ import annotations

import binascii
import struct
import zlib
from dataclasses import dataclass

PROTOCOL_VERSION = 1
SOF = b"\xa5\x5a"
HEADER_SIZE = 8
TRAILER_SIZE = 4
# Replies carry whole layer outputs; the u16 length field is the real bound.
HOST_MAX_PAYLOAD = 0xFFFF

MSG_HELLO = 0x01
MSG_INFER = 0x02
MSG_LAYER = 0x03
MSG_PROFILE = 0x04
MSG_CAPTURE = 0x05
MSG_BOOT = 0x70
MSG_ERROR = 0x7F
MSG_REPLY = 0x80

ERROR_NAMES = {
    1: "unknown request type",
    2: "bad length",
    3: "no inference since reset",
    4: "layer index out of range",
    5: "unsupported",
    6: "model setup failed",
}


def crc16(data: bytes) -> int:
    return binascii.crc_hqx(data, 0xFFFF)


def encode_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    if len(payload) > HOST_MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes does not fit one frame")
    head = struct.pack("<BBH", msg_type, seq & 0xFF, len(payload))
    head += struct.pack("<H", crc16(head))
    body = head + payload
    return SOF + body + struct.pack("<I", zlib.crc32(body))


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes


class FrameParser:
    """Incremental parser: feed() bytes as they arrive, frames() yields the valid ones."""

    def __init__(self, max_payload: int = HOST_MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self.buf = bytearray()
        self.dropped = 0
        self.bad_crc = 0
        self.bad_length = 0

    def _skip(self) -> None:
        k = self.buf.find(SOF[:1], 1)
        k = len(self.buf) if k < 0 else k
        self.dropped += k
        del self.buf[:k]

    def feed(self, data: bytes) -> list[Frame]:
        self.buf += data
        out: list[Frame] = []
        while self.buf:
            if self.buf[0] != SOF[0] or (len(self.buf) >= 2 and self.buf[1] != SOF[1]):
                self._skip()
                continue
            if len(self.buf) < HEADER_SIZE:
                break
            msg_type, seq, length, hcrc = struct.unpack_from("<BBHH", self.buf, 2)
            if crc16(bytes(self.buf[2:6])) != hcrc:
                self.bad_crc += 1
                self._skip()
                continue
            if length > self.max_payload:
                self.bad_length += 1
                self._skip()
                continue
            total = HEADER_SIZE + length + TRAILER_SIZE
            if len(self.buf) < total:
                break
            (crc,) = struct.unpack_from("<I", self.buf, HEADER_SIZE + length)
            if zlib.crc32(bytes(self.buf[2 : HEADER_SIZE + length])) != crc:
                self.bad_crc += 1
                self._skip()
                continue
            out.append(Frame(msg_type, seq, bytes(self.buf[HEADER_SIZE : HEADER_SIZE + length])))
            del self.buf[:total]
        return out


class ProtocolError(Exception):
    """A reply that parsed (CRCs good) but does not make sense: never used as a result."""


@dataclass(frozen=True)
class Hello:
    version: int
    max_payload: int
    tick_hz: int
    stack_size: int
    arena_size: int
    input_size: int
    output_size: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    num_layers: int
    board: str
    model_name: str
    model_sha256: str
    # Arena bytes the runtime measured in use (TFLM's arena_used_bytes(); the generated C
    # reports its whole static arena). None from firmware older than this field.
    arena_used: int | None = None
    # The smiling-bot app's camera frame (width, height), (0, 0) when it takes model-size
    # frames only, and its face finder's model hash ("": none, the centre square). None
    # from the harness and from apps older than these fields.
    camera: tuple[int, int] | None = None
    finder_sha256: str | None = None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ProtocolError("reply shorter than its layout")
        vals = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return vals

    def one(self, fmt: str):
        return self.take(fmt)[0]

    def string(self) -> str:
        n = self.one("<B")
        raw = self.data[self.pos : self.pos + n]
        if len(raw) != n:
            raise ProtocolError("reply shorter than its layout")
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out


def decode_hello(payload: bytes) -> Hello:
    r = _Reader(payload)
    version, max_payload, tick_hz, stack, arena, in_size, out_size = r.take("<HIIIIII")
    in_rank = r.one("<B")
    in_shape = r.take("<4I")[: min(in_rank, 4)]
    out_rank = r.one("<B")
    out_shape = r.take("<4I")[: min(out_rank, 4)]
    in_scale, in_zp, out_scale, out_zp, layers = r.take("<fifiH")
    return Hello(
        version=version,
        max_payload=max_payload,
        tick_hz=tick_hz,
        stack_size=stack,
        arena_size=arena,
        input_size=in_size,
        output_size=out_size,
        input_shape=tuple(in_shape),
        output_shape=tuple(out_shape),
        input_scale=in_scale,
        input_zero_point=in_zp,
        output_scale=out_scale,
        output_zero_point=out_zp,
        num_layers=layers,
        board=r.string(),
        model_name=r.string(),
        model_sha256=r.string(),
        arena_used=r.one("<I") if len(payload) - r.pos >= 4 else None,
        camera=tuple(r.take("<HH")) if len(payload) - r.pos >= 5 else None,  # type: ignore[arg-type]
        finder_sha256=r.string() if len(payload) - r.pos >= 1 else None,
    )


@dataclass(frozen=True)
class InferReply:
    input_crc: int
    start_ticks: int  # stamps since the counter's restart just before the run
    end_ticks: int
    output: bytes

    @property
    def ticks(self) -> int:
        return self.end_ticks - self.start_ticks


def decode_infer(payload: bytes) -> InferReply:
    r = _Reader(payload)
    crc, start, end = r.take("<IQQ")
    return InferReply(crc, start, end, r.rest())


@dataclass(frozen=True)
class LayerReply:
    layer: int
    input_crc: int
    data: bytes


def decode_layer(payload: bytes) -> LayerReply:
    r = _Reader(payload)
    layer, crc, size = r.take("<HII")
    data = r.rest()
    if len(data) != size:
        raise ProtocolError(f"LAYER reply announces {size} bytes but carries {len(data)}")
    return LayerReply(layer, crc, data)


@dataclass(frozen=True)
class ProfileReply:
    input_crc: int
    start_ticks: int
    end_ticks: int
    layer_end_ticks: tuple[int, ...]  # absolute stamps, like start and end

    @property
    def total_ticks(self) -> int:
        return self.end_ticks - self.start_ticks


def decode_profile(payload: bytes) -> ProfileReply:
    r = _Reader(payload)
    crc, start, end, n = r.take("<IQQH")
    ends = r.take(f"<{n}Q") if n else ()
    return ProfileReply(crc, start, end, tuple(ends))


def decode_error(payload: bytes) -> str:
    if not payload:
        return "device error (no detail)"
    code = payload[0]
    text = payload[1:].decode("utf-8", errors="replace")
    return f"{ERROR_NAMES.get(code, f'error {code}')}: {text}"
