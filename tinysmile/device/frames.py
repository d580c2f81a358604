"""`tinysmile frame`: send whole camera frames to a board running the smiling-bot app and
compare its box, score and decision with the host's: the same C (firmware/app/tsm_bot.c,
the face finder and the smile model) built for the host, `tinysmile.device.bot.HostBot`."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.boards import load_board
from tinysmile.bundle import load_bundle
from tinysmile.data.preprocess import load_image
from tinysmile.device import emulator
from tinysmile.device.app import FACE_GIVEN, send_camera_frame, smile_index, smile_threshold
from tinysmile.device.bot import HostBot, resolve_detector, to_camera_frame
from tinysmile.device.project import finder_digest, firmware_tag
from tinysmile.device.session import build, client_for
from tinysmile.device.transport import find_ports
from tinysmile.errors import TinysmileError


def run_frames(
    model: str | None,
    board_id: str | None,
    images: list[str],
    port: str | None = None,
    log: Any = None,
    detector: str | None = None,
) -> dict[str, Any]:
    """Send images (as camera frames: grayscale, letterboxed to the board's camera size) to
    a board running the app; return the device's box, score, decision and LED next to the
    host's. detector: what the board's app was flashed with (see resolve_detector)."""
    log = log or (lambda m: None)
    bundle, board = load_bundle(model), load_board(board_id)
    if not images:
        raise TinysmileError("give at least one image")
    cam = board.camera
    if cam is None:
        raise TinysmileError(
            f"board {board.id} has no camera frame: whole frames cannot reach its app"
        )
    fw, fh = int(cam["width"]), int(cam["height"])
    finder = resolve_detector(detector, board)
    out = bundle.meta.get("output", {})
    if not out or not bundle.meta.get("input"):
        raise TinysmileError(f"{bundle.name}: the app needs a bundle (input/output quantization)")
    out_size = int(np.prod(out["shape"]))
    thr = smile_threshold(bundle, float(out["scale"]), int(out["zero_point"]))
    idx = smile_index(bundle, out_size)
    frames = [to_camera_frame(load_image(p), fw, fh) for p in images]
    log("building the host reference (the same C)")
    host_bot = HostBot(bundle, finder, fw, fh)
    host = [host_bot.decide(f) for f in frames]

    started = None
    tag = firmware_tag(
        bundle.model_hash(), "native", "app", finder_digest(finder) if finder else None
    )
    if port is None and board.emulated:
        st = emulator.read_state(board.id)
        if st and st.model_sha256 == tag:
            port = st.port
        else:
            log("building the app firmware")
            project = build(bundle, board, log=log, mode="app", finder=finder)
            started = emulator.start(board, project.elf, tag, register=False)
            port = started.port
    elif port is None:
        ids = list(board.serial.get("usb_ids", []))
        found = find_ports(ids)
        if len(found) != 1:
            raise TinysmileError(
                f"{'no' if not found else 'several'} {board.id} found on USB (looked for "
                f"{', '.join(ids) or 'no VID:PID'}); pass --port"
            )
        port = found[0]
    rows = []
    try:
        client = client_for(board, port, log)
        try:
            hello = client.handshake()
            if hello.model_sha256 != bundle.model_hash():
                raise TinysmileError(
                    f"the device on {port} runs model {hello.model_name!r}, not {bundle.name!r}:"
                    " flash it with --mode app first"
                )
            for path, frame, h in zip(images, frames, host, strict=True):
                r = send_camera_frame(client, frame, out_size)
                if (r.face == FACE_GIVEN) == (finder is not None):
                    raise TinysmileError(
                        f"the app on {port} runs {'no' if finder else 'a'} face finder; flash it "
                        f"with --detector {'none' if not finder else 'the same finder'}"
                    )
                device_face = list(r.box) if r.found else None
                host_face = list(h.face) if h.face is not None else None
                host_out = h.output_int8
                same = (
                    device_face == host_face
                    and r.score == h.score
                    and bool(r.smile) == h.smile
                    and r.led == int(h.smile)
                    and (
                        host_out is None
                        or (np.array_equal(r.output, host_out) and list(r.square) == list(h.square))
                    )
                )
                rows.append(
                    {
                        "image": str(path),
                        "device_face": device_face,
                        "host_face": host_face,
                        # The smile model's int8 score (null: no face, no inference).
                        "device_score": int(r.output[idx]) if r.found else None,
                        "host_score": None if host_out is None else int(host_out[idx]),
                        "device_finder_score": r.score,
                        "host_finder_score": h.score,
                        "device_square": list(r.square) if r.found else None,
                        "host_square": None if h.square is None else list(h.square),
                        "device_smile": r.smile,
                        "host_smile": int(h.smile),
                        "led": r.led,
                        "counts": stage_counts(board, r.stamps),
                        "same": bool(same),
                    }
                )
        finally:
            client.close()
    finally:
        if started is not None:
            emulator.kill(started)
    return {
        "board": board.id,
        "model": bundle.name,
        "detector": finder.name if finder else "none",
        "port": port,
        "frame": [fw, fh],
        "threshold_int8": thr,
        "unit": board.counter_unit,
        "frames": rows,
        "ok": all(r["same"] for r in rows),
    }


def stage_counts(board: Any, stamps: tuple[int, int, int]) -> dict[str, int]:
    """The reply's stage stamps (ticks since the frame's start) as the board's counter unit
    (instructions on the emulated board under -icount, cycles on real boards)."""
    detect, crop, classify = (int(s) for s in stamps)
    return {
        "detect": board.count_between(0, detect),
        "crop": board.count_between(detect, crop),
        "classify": board.count_between(crop, classify),
    }
