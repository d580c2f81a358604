"""`tinysmile frame`: send images to a board running the smiling-bot app and compare its
decisions with the host's (LiteRT's reference kernels on the same pixels)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysmile.boards import load_board
from tinysmile.bundle import load_bundle
from tinysmile.compiler.oracle import litert_reference
from tinysmile.data.preprocess import PreprocessSpec, load_image, preprocess, to_int8
from tinysmile.device import emulator
from tinysmile.device.app import send_frame, smile_index, smile_threshold
from tinysmile.device.project import firmware_tag
from tinysmile.device.session import build, client_for
from tinysmile.device.transport import find_ports
from tinysmile.errors import TinysmileError


def run_frames(
    model: str | None,
    board_id: str | None,
    images: list[str],
    port: str | None = None,
    log: Any = None,
) -> dict[str, Any]:
    """Send images (through the bundle's preprocessing) to a board running the app; return
    the device's decision, LED and score next to the host's (LiteRT reference kernels)."""
    log = log or (lambda m: None)
    bundle, board = load_bundle(model), load_board(board_id)
    if not images:
        raise TinysmileError("give at least one image")
    spec = PreprocessSpec.from_dict(bundle.preprocess)
    inp, out = bundle.meta.get("input", {}), bundle.meta.get("output", {})
    if not inp or not out:
        raise TinysmileError(f"{bundle.name}: the app needs a bundle (input/output quantization)")
    shape = [int(d) for d in inp["shape"]]
    out_size = int(np.prod(out["shape"]))
    thr = smile_threshold(bundle, float(out["scale"]), int(out["zero_point"]))
    idx = smile_index(bundle, out_size)
    pixels = [preprocess(spec, load_image(p)).reshape(shape[1], shape[2]) for p in images]
    x = np.stack([to_int8(spec, p, inp["scale"], inp["zero_point"]) for p in pixels])
    host = litert_reference(bundle.model_path, x.reshape(len(images), *shape[1:]))
    host = host.reshape(len(images), -1)

    started = None
    tag = firmware_tag(bundle.model_hash(), "native", "app")
    if port is None and board.emulated:
        st = emulator.read_state(board.id)
        if st and st.model_sha256 == tag:
            port = st.port
        else:
            log("building the app firmware")
            project = build(bundle, board, log=log, mode="app")
            started = emulator.start(board, project.elf, tag, register=False, icount=False)
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
            for path, p, h in zip(images, pixels, host, strict=True):
                r = send_frame(client, p, out_size)
                host_smile = int(int(h[idx]) >= thr)
                rows.append(
                    {
                        "image": str(path),
                        "device_score": int(r.output[idx]),
                        "host_score": int(h[idx]),
                        "device_smile": r.smile,
                        "host_smile": host_smile,
                        "led": r.led,
                        "same": bool(r.smile == host_smile and np.array_equal(r.output, h)),
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
        "port": port,
        "threshold_int8": thr,
        "frames": rows,
        "ok": all(r["same"] for r in rows),
    }
