"""Flash and RAM a firmware needs against what the board has, checked before any build.

One budget per runtime:
- native: the compiled model's weights and arena, tinysmile's code (kernels, protocol,
  harness or app, port layer), the serial buffers, the stack;
- tflm: the .tflite itself (flash), TFLite Micro's code, the arena the sketch allocates
  (TFLM's own report plus the stated margin), the serial buffers, the stack.
Both add what the board's framework takes before the sketch (boards/<id>.toml [budget]),
and in app mode with a camera frame, the frame buffer; with a face finder, its weights
(flash), arena, input/output buffers and decoding tables, and the resize scratch. Code sizes are stated estimates: the
exact figures are the linker's, after the build (`pio run` prints them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinysmile.boards import Board
from tinysmile.errors import TinysmileError

# tinysmile's own code: every kernel, the protocol, harness, app and port layer, at -O2 for
# Thumb-2. The emulated board's harness for the bundled model links 6.3 KB of it (5 of the
# 14 kernels); 16 KiB covers all of them with room for Thumb-1 (Cortex-M0+) being larger.
NATIVE_CODE_BYTES = 16 * 1024
# TFLite Micro's interpreter, allocator, flatbuffer reader and a handful of reference
# kernels: the Arduino library's micro_speech example is about this much beyond its core.
# (A local library may say otherwise: tflm_lib.Layout.code_bytes.)
TFLM_CODE_BYTES = 80 * 1024
RUNTIMES = ("native", "tflm")
MODES = ("harness", "app")
# Bytes of framing around the largest request the device buffers (header + CRC + slack).
PROTO_OVERHEAD = 16
# Camera-frame bytes per FRAME_DATA request (firmware/app/tsm_app.h): the receive buffer
# holds one; 4 KiB makes a 320 x 240 frame 19 requests.
FRAME_CHUNK = 4096
# The finder's decoding tables (three of 256 int32) and its pixel table, in flash.
FINDER_TABLE_BYTES = 3 * 256 * 4 + 256


@dataclass(frozen=True)
class Budget:
    board: str
    runtime: str
    mode: str
    ram: dict[str, int]
    flash: dict[str, int]
    ram_bytes: int
    flash_bytes: int

    @property
    def ram_total(self) -> int:
        return sum(self.ram.values())

    @property
    def flash_total(self) -> int:
        return sum(self.flash.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "board": self.board,
            "runtime": self.runtime,
            "mode": self.mode,
            "ram": dict(self.ram),
            "ram_total": self.ram_total,
            "ram_bytes": self.ram_bytes,
            "ram_free": self.ram_bytes - self.ram_total,
            "flash": dict(self.flash),
            "flash_total": self.flash_total,
            "flash_bytes": self.flash_bytes,
            "flash_free": self.flash_bytes - self.flash_total,
        }


def tensor_size(shape: list[int]) -> int:
    """Elements of a tensor of this shape."""
    n = 1
    for d in shape:
        n *= int(d)
    return n


def max_payload(report: dict[str, Any], mode: str, camera: bool) -> int:
    """The largest request the device buffers: INFER's input, the app's model-size FRAME,
    or with a camera frame a FRAME_DATA chunk and its offset."""
    inp = tensor_size(report["input"]["shape"])
    chunk = 4 + FRAME_CHUNK if mode == "app" and camera else 0
    return max(inp, chunk) + PROTO_OVERHEAD


def serial_ram(report: dict[str, Any], mode: str, camera: bool = False) -> dict[str, int]:
    """Buffers around the model: what the harness keeps for INFER/LAYER/PROFILE, or the
    app's frame request (a model-size frame, or a chunk of the camera frame)."""
    inp = tensor_size(report["input"]["shape"])
    out = tensor_size(report["output"]["shape"])
    if mode == "app":
        return {"io_buffers": inp + out, "rx_buffer": max_payload(report, mode, camera)}
    layers = len(report["layers"])
    return {"io_buffers": inp + out + 8 * layers, "rx_buffer": inp + PROTO_OVERHEAD}


def _extras(
    board: Board, mode: str, report: dict[str, Any], finder: dict[str, Any] | None
) -> tuple[dict[str, int], dict[str, int]]:
    fw_flash, fw_ram = board.framework_bytes
    ram: dict[str, int] = {"stack": int(board["stack_bytes"])}
    flash: dict[str, int] = {}
    cam = board.camera
    if mode == "app" and cam:
        ram["camera_frame"] = int(cam["width"]) * int(cam["height"])
        if cam.get("driver_ram_bytes"):
            ram["camera_driver"] = int(cam["driver_ram_bytes"])
    if mode == "app":
        shape = report["input"]["shape"]
        scratch = int(shape[1]) * int(shape[2])
        if finder is not None:
            f_in = tensor_size(finder["input"]["shape"])
            ram["finder_arena"] = int(finder["arena_bytes"])
            ram["finder_io_buffers"] = f_in + tensor_size(finder["output"]["shape"])
            scratch = max(scratch, f_in)
            flash["finder_weights"] = int(finder["weights_bytes"])
            flash["finder_tables"] = FINDER_TABLE_BYTES
        ram["resize_scratch"] = scratch
    if fw_ram:
        ram["framework"] = fw_ram
    if fw_flash:
        flash["framework"] = fw_flash
    return ram, flash


def native_budget(
    report: dict[str, Any],
    board: Board,
    mode: str = "harness",
    finder: dict[str, Any] | None = None,
) -> Budget:
    """finder: the face finder's compile report (app mode), or None."""
    ram = {"arena": int(report["arena_bytes"]), **serial_ram(report, mode, bool(board.camera))}
    flash = {"weights": int(report["weights_bytes"]), "code": NATIVE_CODE_BYTES}
    more_ram, more_flash = _extras(board, mode, report, finder)
    ram.update(more_ram)
    flash.update(more_flash)
    return Budget(
        board.id, "native", mode, ram, flash, int(board["ram_bytes"]), int(board["flash_bytes"])
    )


def tflm_budget(
    report: dict[str, Any],
    model_bytes: int,
    arena_bytes: int,
    board: Board,
    mode: str = "harness",
    finder: dict[str, Any] | None = None,
    code_bytes: int = TFLM_CODE_BYTES,
) -> Budget:
    """report: tinysmile's compile report of the same model (shapes only); finder: the face
    finder's compile report (it runs on the native kernels), or None; code_bytes: TFLite
    Micro's code, as estimated for the library."""
    # TFLM's own input/output tensors live in its arena; the harness or app keeps its own
    # copies besides (the same buffers as the native build).
    ram = {"arena": int(arena_bytes), **serial_ram(report, mode, bool(board.camera))}
    flash = {"model": int(model_bytes), "code": int(code_bytes)}
    more_ram, more_flash = _extras(board, mode, report, finder)
    ram.update(more_ram)
    flash.update(more_flash)
    return Budget(
        board.id, "tflm", mode, ram, flash, int(board["ram_bytes"]), int(board["flash_bytes"])
    )


def _parts(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in d.items())


def check_budget(b: Budget, model: str = "model") -> None:
    """Refuse, with the numbers and by how much, a firmware that cannot fit the board."""
    if b.ram_total > b.ram_bytes:
        raise TinysmileError(
            f"{model} ({b.runtime}, {b.mode}) needs {b.ram_total:,} bytes of RAM "
            f"({_parts(b.ram)}) but {b.board} has {b.ram_bytes:,}: "
            f"{b.ram_total - b.ram_bytes:,} bytes too many"
        )
    if b.flash_total > b.flash_bytes:
        raise TinysmileError(
            f"{model} ({b.runtime}, {b.mode}) needs {b.flash_total:,} bytes of flash "
            f"({_parts(b.flash)}) but {b.board} has {b.flash_bytes:,}: "
            f"{b.flash_total - b.flash_bytes:,} bytes too many"
        )


def check_linked(board: Board, memory: dict[str, int], what: str = "model") -> None:
    """Refuse, with the linker's section sizes, a linked firmware that does not fit: the
    board's flash above where its bootloader loads the app, and its RAM."""
    start = int(str(board.get("upload", {}).get("address", "0")), 0)
    flash = int(board["flash_bytes"]) - start
    ram = int(board["ram_bytes"])
    if memory["ram_total"] > ram:
        raise TinysmileError(
            f"{what}: the linked firmware needs {memory['ram_total']:,} bytes of RAM (.data "
            f"{memory['ram_data']:,}, .bss {memory['ram_bss']:,}, stack "
            f"{memory['ram_stack']:,}) but {board.id} has {ram:,}: "
            f"{memory['ram_total'] - ram:,} bytes too many"
        )
    if memory["flash_total"] > flash:
        raise TinysmileError(
            f"{what}: the linked firmware needs {memory['flash_total']:,} bytes of flash "
            f"(code {memory['flash_text']:,}, constants {memory['flash_rodata']:,}, .data "
            f"{memory['flash_data_init']:,}) but {board.id} has {flash:,} above its "
            f"bootloader: {memory['flash_total'] - flash:,} bytes too many"
        )
