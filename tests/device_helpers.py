"""Shared by the device and protocol tests: building the host-side C drivers, and a
simulated device (the harness's behaviour in Python) with fault injection."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import zlib
from pathlib import Path

import numpy as np

from tinysmile.device import protocol as p
from tinysmile.resources import firmware_dir

TESTS = Path(__file__).resolve().parent
FUZZ = TESTS / "fuzz"

# TFLite Micro as the project's machines keep it (../shared/libraries): the newest, as a
# source tree (or $TINYSMILE_TFLM_LIB), and the 2023 Arduino library (the real boards'
# registry dependency). Each is None where it is missing or not a TFLite Micro library.
SHARED_LIBS = TESTS.parents[1] / "shared" / "libraries"


def tflm_library(path: Path):
    from tinysmile.device import tflm_lib
    from tinysmile.errors import TinysmileError

    try:
        return tflm_lib.locate(path)
    except TinysmileError:
        return None


def _tflm_paths() -> tuple[Path, Path]:
    import os

    from tinysmile.device import tflm_lib

    tree = Path(os.environ.get(tflm_lib.ENV_VAR) or SHARED_LIBS / "tflite-micro")
    return tree, SHARED_LIBS / "Arduino_TensorFlowLite"


TFLM_LIB, ARDUINO_LIB = _tflm_paths()

# SparkFun's Apollo3 Arduino core v1.2.3 and the apollo3blue platform as this machine keeps
# them (../shared/platformio, its README): the tests' default for $TINYSMILE_APOLLO3_CORE.
SHARED_PIO = TESTS.parents[1] / "shared" / "platformio"
APOLLO3_CORE = Path(
    __import__("os").environ.get("TINYSMILE_APOLLO3_CORE")
    or SHARED_PIO / "framework-arduinoapollo3"
)
# SparkFun's HM01B0 camera library (the Edge's app), as ../shared/libraries keeps it.
HM01B0_LIB = Path(
    __import__("os").environ.get("TINYSMILE_HM01B0_LIB") or SHARED_LIBS / "SparkFun_HM01B0_Camera"
)
TFLM = tflm_library(TFLM_LIB)
TFLM_ARDUINO = tflm_library(ARDUINO_LIB)


def host_cc() -> str | None:
    for cc in ("clang", "gcc"):
        if shutil.which(cc):
            return cc
    return None


def build_host(
    out: Path,
    sources: list[Path],
    defines: dict[str, str] | None = None,
    sanitize: str | None = "address,undefined",
    cc: str | None = None,
    extra: list[str] | None = None,
) -> Path:
    cc = cc or host_cc()
    assert cc, "no host C compiler (clang or gcc)"
    fw = firmware_dir()
    cmd = [
        cc,
        "-std=c99",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-O1",
        "-g",
        f"-I{fw / 'protocol'}",
        f"-I{fw}",
        "-o",
        str(out),
    ]
    if sanitize:
        cmd += [f"-fsanitize={sanitize}", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
    cmd += [f"-D{k}={v}" for k, v in (defines or {}).items()]
    cmd += extra or []
    cmd += [str(s) for s in sources]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)
    return out


def standin_layers(x: np.ndarray) -> list[np.ndarray]:
    """Host twin of tests/fixtures/standin_model.c."""
    a = np.clip(x.astype(np.int32).reshape(-1) + 1, -128, 127).astype(np.int8)
    out = np.clip(a.astype(np.int32).reshape(4, 4).sum(axis=1), -128, 127).astype(np.int8)
    return [a, out]


class LoopbackTransport:
    """In-process transport: what the client writes goes to a device callback; what the
    device sends is queued for the client to read. Deadlines use the real clock."""

    def __init__(self) -> None:
        self.to_host = bytearray()
        self.cond = threading.Condition()
        self.device = None  # set by FakeDevice
        self.closed = False

    def write(self, data: bytes) -> None:
        assert self.device is not None
        self.device.receive(data)

    def deliver(self, data: bytes) -> None:
        with self.cond:
            self.to_host += data
            self.cond.notify_all()

    def read(self, max_bytes: int, timeout: float) -> bytes:
        end = time.monotonic() + timeout
        with self.cond:
            while not self.to_host:
                left = end - time.monotonic()
                if left <= 0:
                    return b""
                self.cond.wait(left)
            out = bytes(self.to_host[:max_bytes])
            del self.to_host[: len(out)]
            return out

    def close(self) -> None:
        self.closed = True


class FakeDevice:
    """The harness's protocol behaviour over the stand-in model, with faults on demand.

    faults: list of callables (frame_bytes, request_index) -> bytes | None applied to each
    reply (None = drop it); `delay` seconds before a reply is sent (on a timer thread);
    `reset_before` set of request indices at which the device "reboots" (loses its input,
    sends BOOT) instead of answering."""

    def __init__(
        self,
        transport,
        faults=None,
        delay: dict[int, float] | None = None,
        reset_before: set[int] | None = None,
        silent: bool = False,
        sha256: str = "ab" * 32,
        version: int = 1,
    ) -> None:
        self.t = transport
        self.parser = p.FrameParser(max_payload=4096)
        self.faults = faults or []
        self.delay = delay or {}
        self.reset_before = reset_before or set()
        self.silent = silent
        self.sha256 = sha256
        self.version = version
        self.requests = 0
        self.input: bytes | None = None
        self.timers: list[threading.Timer] = []
        transport.device = self

    def receive(self, data: bytes) -> None:
        for frame in self.parser.feed(data):
            idx = self.requests
            self.requests += 1
            if self.silent:
                continue
            if idx in self.reset_before:
                self.input = None
                self._send(p.encode_frame(p.MSG_BOOT, 0, b"\x01\x00"), idx, raw=True)
                continue
            self._send(self.reply(frame), idx)

    def _send(self, data: bytes, idx: int, raw: bool = False) -> None:
        if not raw:
            for fault in self.faults:
                data = fault(data, idx)
                if data is None:
                    return
        if idx in self.delay:
            tm = threading.Timer(self.delay[idx], self.t.deliver, args=(data,))
            tm.daemon = True
            self.timers.append(tm)
            tm.start()
        else:
            self.t.deliver(data)

    def reply(self, f: p.Frame) -> bytes:
        def ok(payload: bytes) -> bytes:
            return p.encode_frame(f.type | p.MSG_REPLY, f.seq, payload)

        def err(code: int, text: str) -> bytes:
            return p.encode_frame(p.MSG_ERROR | p.MSG_REPLY, f.seq, bytes([code]) + text.encode())

        import struct

        if f.type == p.MSG_HELLO:
            body = struct.pack("<HIIIIII", self.version, 4096, 25_000_000, 8192, 16, 16, 4)
            body += bytes([4]) + struct.pack("<4I", 1, 4, 4, 1)
            body += bytes([2]) + struct.pack("<4I", 1, 4, 0, 0)
            body += struct.pack("<fifiH", 0.5, -1, 0.25, 3, 2)
            for s in ("fake-board", "standin", self.sha256):
                body += bytes([len(s)]) + s.encode()
            return ok(body)
        if f.type == p.MSG_INFER:
            if len(f.payload) != 16:
                return err(2, "input size differs from the model's")
            self.input = f.payload
            out = standin_layers(np.frombuffer(f.payload, dtype=np.int8))[-1].tobytes()
            return ok(struct.pack("<IQQ", zlib.crc32(f.payload), 3, 1234) + out)
        if f.type == p.MSG_LAYER:
            if self.input is None:
                return err(3, "no inference since reset")
            (layer,) = struct.unpack("<H", f.payload)
            if layer >= 2:
                return err(4, "layer index out of range")
            data = standin_layers(np.frombuffer(self.input, dtype=np.int8))[layer].tobytes()
            return ok(struct.pack("<HII", layer, zlib.crc32(self.input), len(data)) + data)
        if f.type == p.MSG_PROFILE:
            if self.input is None:
                return err(3, "no inference since reset")
            return ok(struct.pack("<IQQH2Q", zlib.crc32(self.input), 3, 1300, 2, 700, 1290))
        return err(1, "unknown request type")
