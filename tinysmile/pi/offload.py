"""MCU offload (`--mcu`): frames go to a microcontroller board running the same model, and
the Pi takes over whenever it stops answering.

A board is used only after it answers HELLO with the bundle's model hash. The smiling-bot
app with a face finder (its HELLO names the finder and the camera frame) gets the whole
frame (FRAME_DATA chunks, then FRAME: the board finds the face, crops and decides, and the
Pi's own detector does not run); the app without one gets the crop's pixels (FRAME: it maps
them to the model input with its own pixel table and drives its own LED); the verification
harness gets the int8 input (INFER). Each frame
gets at most one short attempt (no retries): on silence, a closed port or a wrong reply the
frame is decided locally at once, so no frame is lost or decided twice, and the board is
tried again (HELLO first) after `retry_s`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tinysmile.bundle import Bundle
from tinysmile.errors import TinysmileError


@dataclass(frozen=True)
class BoardDecision:
    """The board's decision on a whole frame, in the Pi's frame pixels."""

    face: tuple[int, int, int, int] | None  # x, y, w, h; None: the board found no face
    square: tuple[int, int, int, int] | None  # the square the smile model saw (x, y, s, s)
    output: np.ndarray | None  # int8; None: no face, no inference
    pixels: np.ndarray | None  # the model-size crop the board took (uint8 H x W x 1)


class Offload:
    name = "mcu"

    def __init__(
        self,
        bundle: Bundle,
        port: str | Callable[[], str | None],
        board_id: str | None = None,
        timeout_s: float = 2.0,
        retry_s: float = 2.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        from tinysmile.boards import load_board

        self.board = load_board(board_id)
        self.want = bundle.model_hash()
        shape = bundle.meta["input"]["shape"]  # (1, H, W, C)
        self._model_hw = (int(shape[1]), int(shape[2]))
        self._port = port
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self.log = log or (lambda m: None)
        self.client = None
        self.port: str | None = None
        self.mode = ""  # "app" (FRAME) or "harness" (INFER)
        self.camera: tuple[int, int] | None = None  # the app's frame, when it has a finder
        self.output_size = 0
        self.next_try = 0.0
        self.failovers = 0  # times the board stopped answering mid-run
        self.reconnects = 0

    def _resolve_port(self) -> str | None:
        return self._port() if callable(self._port) else self._port

    def _connect(self) -> bool:
        from tinysmile.device.client import DeviceClient
        from tinysmile.device.transport import SerialTransport

        port = self._resolve_port()
        if port is None:
            return False
        client = None
        try:
            baud = int(self.board.serial.get("baud", 115200))
            client = DeviceClient(
                SerialTransport(port, baud=baud, open_timeout=0.2),
                timeout=self.timeout_s,
                retries=0,
                per_byte_s=float(self.board.serial.get("per_byte_s", 10.0 / baud)),
            )
            hello = client.handshake()
        except TinysmileError as exc:
            if client is not None:
                client.close()
            self.log(f"mcu on {port}: {exc}")
            return False
        if hello.model_sha256 != self.want:
            client.close()
            self.log(f"mcu on {port} runs another model ({hello.model_sha256[:12]}…); not used")
            return False
        try:
            self.mode = _probe_mode(client)
        except TinysmileError as exc:
            client.close()
            self.log(f"mcu on {port}: {exc}")
            return False
        self.output_size = hello.output_size
        self.camera = None
        if self.mode == "app" and hello.finder_sha256 and hello.camera and min(hello.camera):
            self.camera = hello.camera
        self.client, self.port = client, port
        self.reconnects += 1
        what = (
            f"whole {self.camera[0]}x{self.camera[1]} frames go there (its finder)"
            if self.camera
            else "frames go there"
        )
        self.log(f"mcu on {port}: {hello.board} ({self.mode}), model {hello.model_name}; {what}")
        return True

    @property
    def connected(self) -> bool:
        return self.client is not None

    def ready(self) -> bool:
        """Connected, or (re)connected now if a try is due."""
        if self.client is None:
            now = time.monotonic()
            if now < self.next_try:
                return False
            self.next_try = now + self.retry_s
            if not self._connect():
                return False
        return True

    @property
    def whole_frames(self) -> bool:
        """The board finds the face itself: hand it whole frames (`decide`)."""
        return self.client is not None and self.camera is not None

    def decide(self, gray: np.ndarray) -> BoardDecision | None:
        """The board's decision on a whole grey frame (made its camera frame as `tinysmile
        frame` makes it: letterboxed with the integer resize), or None: decide locally."""
        from tinysmile.data.pixels import letterbox, resize_area
        from tinysmile.device.app import send_camera_frame

        if not self.whole_frames:
            return None
        assert self.client is not None and self.camera is not None
        cw, ch = self.camera
        frame, (x0, y0, nw, nh) = letterbox(np.ascontiguousarray(gray, dtype=np.uint8), cw, ch)
        try:
            r = send_camera_frame(self.client, frame, self.output_size)
        except TinysmileError as exc:
            self._failed(exc)
            return None
        if not r.found:
            return BoardDecision(None, None, None, None)
        gh, gw = gray.shape[:2]

        def back(x: int, y: int, w: int, h: int) -> tuple[int, int, int, int]:
            # Camera-frame pixels -> the Pi's frame pixels (undo the letterbox).
            sx, sy = gw / nw, gh / nh
            return (round((x - x0) * sx), round((y - y0) * sy), round(w * sx), round(h * sy))

        sx, sy, side = r.square
        crop = frame[sy : sy + side, sx : sx + side]
        mh, mw = self._model_hw
        pixels = resize_area(crop, mw, mh)[:, :, None] if (side, side) != (mw, mh) else crop
        return BoardDecision(
            face=back(*r.box),
            square=back(sx, sy, side, side),
            output=r.output,
            pixels=np.ascontiguousarray(pixels, dtype=np.uint8).reshape(mh, mw, 1),
        )

    def infer(self, x: np.ndarray, pixels: np.ndarray) -> np.ndarray | None:
        """The board's int8 output for this input (int8 x, made from uint8 pixels), or
        None: decide locally."""
        from tinysmile.device.app import send_frame

        if not self.ready():
            return None
        assert self.client is not None
        try:
            if self.mode == "app":
                return send_frame(self.client, pixels, self.output_size).output
            reply = self.client.infer(np.ascontiguousarray(x, dtype=np.int8).tobytes())
            return np.frombuffer(bytes(reply.output), dtype=np.int8).copy()
        except TinysmileError as exc:
            self._failed(exc)
            return None

    def _failed(self, exc: Exception) -> None:
        self.failovers += 1
        self.log(f"mcu on {self.port} stopped answering ({exc}); deciding here")
        self.close()
        self.next_try = time.monotonic() + self.retry_s

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None


def _probe_mode(client) -> str:
    """App or harness: an empty FRAME is refused as "bad length" by the app and as an
    "unknown request type" by the harness, without any inference or LED change."""
    from tinysmile.device.app import MSG_FRAME
    from tinysmile.device.client import DeviceError

    try:
        client.request(MSG_FRAME, b"")
    except DeviceError as exc:
        if exc.code == 2:
            return "app"
        if exc.code == 1:
            return "harness"
        raise
    raise TinysmileError("the board accepted an empty frame: not a tinysmile firmware")


def auto_port(bundle: Bundle, board_id: str | None = None) -> Callable[[], str | None]:
    """`--mcu auto`: the emulator running this model (as `tinysmile flash` leaves it), else
    the one board of this kind found on USB by its VID:PID; looked up at every attempt, so
    a board that comes back on another port is found again."""
    from tinysmile.boards import load_board
    from tinysmile.device import emulator
    from tinysmile.device.project import firmware_tag
    from tinysmile.device.transport import find_ports

    board = load_board(board_id)
    app = firmware_tag(bundle.model_hash(), mode="app")
    want = {bundle.model_hash(), app}  # harness or app

    def find() -> str | None:
        if board.emulated:
            st = emulator.read_state(board.id)
            # The app with a face finder is tagged app+finder; HELLO says what it takes.
            ok = st is not None and (
                st.model_sha256 in want or st.model_sha256.startswith(app + "+")
            )
            return st.port if ok and st is not None else None
        found = find_ports(list(board.serial.get("usb_ids", [])))
        return found[0] if len(found) == 1 else None

    return find
