"""Byte transports under the protocol client: a serial port (pyserial), or anything with the
same three methods (tests use in-process loopbacks and pty pairs)."""

from __future__ import annotations

import time
from typing import Protocol

from tinysmile.errors import TinysmileError


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Up to max_bytes; b"" when nothing arrived within timeout seconds."""
        ...

    def close(self) -> None: ...


class SerialTransport:
    def __init__(self, port: str, baud: int = 115200, open_timeout: float = 5.0) -> None:
        import serial  # pyserial: imported here so the protocol tests do not need it

        self.port = port
        deadline = time.monotonic() + open_timeout
        while True:
            try:
                self.ser = serial.Serial(port, baudrate=baud, timeout=0, write_timeout=10)
                break
            except (serial.SerialException, OSError) as exc:
                if time.monotonic() > deadline:
                    raise TinysmileError(f"cannot open serial port {port}: {exc}") from None
                time.sleep(0.1)

    def write(self, data: bytes) -> None:
        import serial

        try:
            self.ser.write(data)
            self.ser.flush()
        except serial.SerialTimeoutException:
            raise TinysmileError(
                f"{self.port}: writing {len(data)} bytes timed out (device not reading)"
            ) from None
        except (serial.SerialException, OSError) as exc:
            raise TinysmileError(f"{self.port}: write failed: {exc}") from None

    def read(self, max_bytes: int, timeout: float) -> bytes:
        import serial

        try:
            self.ser.timeout = max(timeout, 0.0)
            first = self.ser.read(1)
            if not first:
                return b""
            waiting = self.ser.in_waiting
            return first + (self.ser.read(min(waiting, max_bytes - 1)) if waiting else b"")
        except (serial.SerialException, OSError) as exc:
            raise TinysmileError(f"{self.port}: read failed: {exc}") from None

    def close(self) -> None:
        import contextlib

        # Closing a port whose device vanished is not an error worth reporting.
        with contextlib.suppress(Exception):
            self.ser.close()


def find_ports(usb_ids: list[str]) -> list[str]:
    """Serial ports whose USB VID:PID (hex, "2341:0058") is one of usb_ids."""
    from serial.tools import list_ports

    wanted = {u.lower() for u in usb_ids}
    found = []
    for p in list_ports.comports():
        if p.vid is None or p.pid is None:
            continue
        if f"{p.vid:04x}:{p.pid:04x}" in wanted:
            found.append(p.device)
    return sorted(found)
