"""Protocol client: requests with deadlines and retries; replies are checked before use.

Every wait is bounded: a request is sent, the reply awaited until its deadline, and resent
(with a new sequence number, so a late reply to the old one is recognised and dropped) up
to `retries` times before a DeviceTimeout names what was asked and how long it waited.
A reply is only returned when its CRCs are good, its type and sequence number match the
request, and for INFER/LAYER/PROFILE it echoes the CRC of the input that was sent.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable

from tinysmile.device import protocol as p
from tinysmile.device.transport import Transport
from tinysmile.errors import TinysmileError

_NAMES = {
    p.MSG_HELLO: "HELLO",
    p.MSG_INFER: "INFER",
    p.MSG_LAYER: "LAYER",
    p.MSG_PROFILE: "PROFILE",
    p.MSG_CAPTURE: "CAPTURE",
}


class DeviceTimeout(TinysmileError):
    """The device did not answer within the deadline, after every retry."""


class DeviceError(TinysmileError):
    """The device answered with an error frame (`code`: its TSM_ERR_* code)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class DeviceClient:
    def __init__(
        self,
        transport: Transport,
        timeout: float = 5.0,
        retries: int = 2,
        per_byte_s: float = 0.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.transport = transport
        self.timeout = timeout
        self.retries = retries
        self.per_byte_s = per_byte_s  # serial time per byte: long frames get longer deadlines
        self.parser = p.FrameParser()
        self.seq = 0
        self.resets_seen = 0
        self.retried = 0
        self.hello: p.Hello | None = None
        self._log = log or (lambda msg: None)

    def close(self) -> None:
        self.transport.close()

    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFF
        return self.seq

    def request(
        self,
        msg_type: int,
        payload: bytes = b"",
        timeout: float | None = None,
        reply_bytes: int = 0,
    ) -> bytes:
        name = _NAMES.get(msg_type, f"type {msg_type:#x}")
        wait = (timeout or self.timeout) + self.per_byte_s * (len(payload) + reply_bytes)
        for attempt in range(self.retries + 1):
            if attempt:
                self.retried += 1
                self._log(f"no valid reply to {name}; retry {attempt}/{self.retries}")
            seq = self._next_seq()
            self.transport.write(p.encode_frame(msg_type, seq, payload))
            deadline = time.monotonic() + wait
            reset = False
            while not reset:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                data = self.transport.read(65536, min(left, 0.5))
                for frame in self.parser.feed(data):
                    if frame.type == p.MSG_BOOT:
                        # The device restarted: whatever it was doing for us is lost.
                        self.resets_seen += 1
                        self._log("device reset seen")
                        reset = True
                        continue
                    if frame.seq != seq:
                        continue  # a late reply to an earlier attempt
                    if frame.type == (p.MSG_ERROR | p.MSG_REPLY):
                        raise DeviceError(
                            f"device refused {name}: {p.decode_error(frame.payload)}",
                            frame.payload[0] if frame.payload else None,
                        )
                    if frame.type == (msg_type | p.MSG_REPLY):
                        return frame.payload
        raise DeviceTimeout(
            f"no valid reply to {name} within {wait:.1f} s after {self.retries + 1} attempts "
            f"(device silent, wrong port or wrong firmware?)"
        )

    def handshake(self, timeout: float | None = None) -> p.Hello:
        try:
            hello = p.decode_hello(self.request(p.MSG_HELLO, timeout=timeout))
        except p.ProtocolError as exc:
            raise TinysmileError(f"device HELLO is malformed: {exc}") from None
        if hello.version != p.PROTOCOL_VERSION:
            raise TinysmileError(
                f"device speaks protocol {hello.version}, this tinysmile speaks "
                f"{p.PROTOCOL_VERSION}: flash it again"
            )
        self.hello = hello
        return hello

    def infer(self, x: bytes) -> p.InferReply:
        out_size = self.hello.output_size if self.hello else 0
        for _ in range(self.retries + 1):
            reply = p.decode_infer(self.request(p.MSG_INFER, x, reply_bytes=out_size + 20))
            if reply.input_crc != zlib.crc32(x):
                self._log("INFER reply computed on another input; asking again")
                continue
            if self.hello and len(reply.output) != self.hello.output_size:
                raise p.ProtocolError(
                    f"INFER reply has {len(reply.output)} output bytes, HELLO said "
                    f"{self.hello.output_size}"
                )
            return reply
        raise TinysmileError("device keeps answering INFER for another input")

    def layer(self, x: bytes, index: int, size_hint: int = 0) -> bytes:
        """Layer `index`'s output for input x (re-sent if the device lost it)."""
        for _ in range(self.retries + 1):
            try:
                reply = p.decode_layer(
                    self.request(p.MSG_LAYER, index.to_bytes(2, "little"), reply_bytes=size_hint)
                )
            except DeviceError as exc:
                if "no inference" not in str(exc):
                    raise
                self.infer(x)
                continue
            if reply.input_crc != zlib.crc32(x) or reply.layer != index:
                self.infer(x)
                continue
            return reply.data
        raise TinysmileError(f"could not read layer {index} back for this input")

    def profile(self, x: bytes) -> p.ProfileReply:
        for _ in range(self.retries + 1):
            try:
                reply = p.decode_profile(self.request(p.MSG_PROFILE))
            except DeviceError as exc:
                if "no inference" not in str(exc):
                    raise
                self.infer(x)
                continue
            if reply.input_crc != zlib.crc32(x):
                self.infer(x)
                continue
            return reply
        raise TinysmileError("could not profile this input")
