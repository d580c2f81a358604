"""Connect to the board running a model: a given port, the emulator flash started, an
emulator started here for the occasion, or a USB board found by its VID:PID."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tinysmile.boards import Board
from tinysmile.bundle import Bundle
from tinysmile.device import emulator, tflm_lib
from tinysmile.device.client import DeviceClient
from tinysmile.device.pio import run_pio
from tinysmile.device.project import Project, finder_digest, firmware_tag, generate_project
from tinysmile.device.transport import SerialTransport, find_ports
from tinysmile.errors import TinysmileError

Log = Callable[[str], None]


def project_dir(
    board: Board, bundle: Bundle, perturb_layer: int | None = None, key: str = ""
) -> Path:
    """A per-model build folder under the state dir, so a rebuild is incremental."""
    text = f"{bundle.model_hash()}:{board.id}:{perturb_layer}" + (f":{key}" if key else "")
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return emulator.state_dir() / "projects" / f"{board.id}-{digest}"


def build(
    bundle: Bundle,
    board: Board,
    out_dir: Path | None = None,
    perturb_layer: int | None = None,
    log: Log | None = None,
    mode: str = "harness",
    runtime: str = "native",
    tflm_lib_dir: str | Path | None = None,
    finder: Bundle | None = None,
) -> Project:
    """finder: the app's face finder (None: the centre square)."""
    log = log or (lambda m: None)
    key = "" if (runtime, mode) == ("native", "harness") else f"{runtime}:{mode}"
    if finder is not None:
        key += f":finder-{finder_digest(finder)}"
    out = out_dir or project_dir(board, bundle, perturb_layer, key)
    log(f"compiling {bundle.name} for {board.id} ({runtime} runtime)")
    project = generate_project(
        bundle,
        board,
        out,
        runtime,
        mode,
        perturb_layer=perturb_layer,
        tflm_lib_dir=tflm_lib_dir,
        finder=finder,
    )
    log(f"building firmware with PlatformIO in {project.dir}")
    run_pio(project)
    return project


@dataclass
class Connection:
    client: DeviceClient
    port: str
    started: emulator.EmulatorState | None  # an emulator started here, stopped on exit
    project: Project | None


def client_for(board: Board, port: str, log: Log | None = None) -> DeviceClient:
    serial = board.serial
    return DeviceClient(
        SerialTransport(port, baud=int(serial.get("baud", 115200))),
        timeout=float(serial.get("reply_timeout_s", 10.0)),
        per_byte_s=float(serial.get("per_byte_s", 10.0 / int(serial.get("baud", 115200)))),
        log=log,
    )


@contextmanager
def connect(
    board: Board,
    bundle: Bundle,
    port: str | None = None,
    log: Log | None = None,
    perturb_layer: int | None = None,
    runtime: str = "native",
    tflm_lib_dir: str | Path | None = None,
) -> Iterator[Connection]:
    """A handshaken client for a board running `bundle`'s model.

    For an emulated board with no --port: reuse the emulator `tinysmile flash` left running
    if it runs this model, else build and boot one here (stopped again on exit, and never
    touching an emulator someone else started)."""
    log = log or (lambda m: None)
    started = None
    project = None
    want = bundle.model_hash()
    library = tflm_lib.locate(tflm_lib_dir) if runtime == "tflm" else None
    tag = firmware_tag(want, runtime, library=library.key if library else None)
    if port is None and board.emulated:
        st = emulator.read_state(board.id)
        if st and st.model_sha256 == tag and perturb_layer is None:
            log(f"using the emulator already running this model (pid {st.pid}, {st.port})")
            port = st.port
        else:
            project = build(
                bundle,
                board,
                perturb_layer=perturb_layer,
                log=log,
                runtime=runtime,
                tflm_lib_dir=tflm_lib_dir,
            )
            log("booting the emulator")
            started = emulator.start(board, project.elf, tag, register=False)
            port = started.port
    elif port is None:
        found = find_ports(list(board.serial.get("usb_ids", [])))
        if not found:
            raise TinysmileError(
                f"no {board.id} found on USB (looked for {', '.join(board.serial.get('usb_ids', [])) or 'no VID:PID'}); pass --port"
            )
        if len(found) > 1:
            raise TinysmileError(
                f"several {board.id} boards found ({', '.join(found)}); pass --port"
            )
        port = found[0]
    try:
        client = client_for(board, port, log)
        try:
            hello = client.handshake()
            if hello.model_sha256 != want:
                raise TinysmileError(
                    f"the device on {port} runs model {hello.model_name!r} "
                    f"(sha256 {hello.model_sha256[:12]}…), not {bundle.name!r} "
                    f"(sha256 {want[:12]}…): flash it first"
                )
            yield Connection(client, port, started, project)
        finally:
            client.close()
    finally:
        if started is not None:
            emulator.kill(started)
