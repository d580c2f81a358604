"""Generate a PlatformIO project for a model and a board, build it, read its sizes.

Layout of a generated project::

    PROJECT/
      platformio.ini         templates/<template>/platformio.ini.j2
      link.ld                templates/<template>/<linker_template>
      boards/<board>.json    PlatformIO board manifest, from boards/<id>.toml
      src/tsm_glue.c         binds the harness to the model (buffers sized for it)
      src/model/             the compiled model (<prefix>_model.c/.h)
      src/tsm/               copies of firmware/: harness, protocol, port, kernels
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinysmile import __version__
from tinysmile.boards import Board
from tinysmile.bundle import Bundle
from tinysmile.errors import TinysmileError
from tinysmile.resources import boards_dir, firmware_dir
from tinysmile.templating import render, render_to

PREFIX = "model"
ENV_NAME = "tinysmile"
# Bytes of framing around the largest request (INFER's input) the device must buffer.
_PROTO_OVERHEAD = 16


def c_string(text: str) -> str:
    """A C string literal for text (ASCII; anything else escaped)."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= code < 127:
            out.append(ch)
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode())
    return '"' + "".join(out) + '"'


def hex_int(value: int) -> str:
    return f"0x{value:08X}"


@dataclass
class Project:
    dir: Path
    board: Board
    bundle: Bundle
    compiled: Any  # tinysmile.compiler.api.CompileResult
    stack_bytes: int
    max_payload: int

    @property
    def elf(self) -> Path:
        return self.dir / ".pio" / "build" / ENV_NAME / "program.elf"

    @property
    def report(self) -> dict[str, Any]:
        return self.compiled.report

    @property
    def model_sha256(self) -> str:
        return self.compiled.report["sha256"]


def ram_estimate(report: dict[str, Any], board: Board, mode: str = "harness") -> dict[str, int]:
    """RAM the firmware needs beyond code: what must fit before anything is built."""
    from tinysmile.device.budget import serial_ram

    return {
        "arena": int(report["arena_bytes"]),
        **serial_ram(report, mode),
        "stack": int(board["stack_bytes"]),
    }


def _size(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def check_fits(report: dict[str, Any], board: Board, mode: str = "harness") -> None:
    """Refuse, with the numbers, a model that cannot fit the board (native runtime; see
    tinysmile.device.budget for both runtimes)."""
    from tinysmile.device.budget import check_budget, native_budget

    budget = native_budget(report, board, mode)
    name = report.get("model", "model")
    if budget.ram_total > budget.ram_bytes:
        check_budget(budget, name)
    weights = int(report["weights_bytes"])
    if weights > budget.flash_bytes:
        raise TinysmileError(
            f"model weights are {weights:,} bytes but {board.id} has {budget.flash_bytes:,} "
            f"bytes of flash: {weights - budget.flash_bytes:,} bytes too many"
        )
    check_budget(budget, name)


def _copy(files: list[Path], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, dest / f.name)


def generate_project(
    bundle: Bundle,
    board: Board,
    out_dir: str | Path,
    perturb_layer: int | None = None,
    mode: str = "harness",
) -> Project:
    """mode "harness": the verification harness; "app": the smiling bot, which takes frames
    over serial here (the emulated board has no camera) and reports its LED."""
    from tinysmile.compiler.api import compile_model

    out = Path(out_dir).resolve()
    src = out / "src"
    # Start clean except for PlatformIO's build folder (keeps rebuilds incremental).
    if src.exists():
        shutil.rmtree(src)
    compiled = compile_model(
        bundle.model_path,
        src / "model",
        prefix=PREFIX,
        layer_hooks=mode == "harness",
        perturb_layer=perturb_layer,
    )
    report = compiled.report
    check_fits(report, board, mode)

    fw = firmware_dir()
    tsm = src / "tsm"
    _copy(sorted(fw.glob("*.h")), tsm)
    _copy(sorted((fw / "protocol").glob("*.[ch]")), tsm / "protocol")
    main_dir = "harness" if mode == "harness" else "app"
    _copy(sorted((fw / main_dir).glob("*.[ch]")), tsm / main_dir)
    port = fw / "port" / board["port"]
    if not port.is_dir():
        raise TinysmileError(f"board {board.id}: no firmware port {port}")
    _copy(sorted((fw / "port").glob("*.h")) + sorted(port.glob("*.[ch]")), tsm / "port")
    kdir = fw / "kernels"
    _copy(sorted(kdir.glob("*.h")) + list(compiled.sources), tsm / "kernels")

    input_size = _size(report["input"]["shape"])
    output_size = _size(report["output"]["shape"])
    num_layers = max(len(report["layers"]), 1)
    max_payload = input_size + _PROTO_OVERHEAD
    stack = int(board["stack_bytes"])
    tpl = board["template"]
    if mode == "harness":
        render_to(
            src / "tsm_glue.c",
            f"{tpl}/tsm_glue.c.j2",
            prefix=compiled.prefix,
            input_size=input_size,
            output_size=output_size,
            num_layers=num_layers,
            board_name=c_string(board.id),
            stack_size=stack,
        )
    else:
        from tinysmile.device.app import render_app_glue

        render_app_glue(
            src / "tsm_app_glue.c",
            bundle,
            report,
            board,
            f"{compiled.prefix}_model.h",
            f"{compiled.prefix}_info",
            f"{compiled.prefix}_invoke",
        )
    render_to(
        out / "link.ld",
        f"{tpl}/{board['linker_template']}",
        board_id=board.id,
        flash_origin=hex_int(board["flash_origin"]),
        flash_size=hex_int(board["flash_bytes"]),
        ram_origin=hex_int(board["ram_origin"]),
        ram_size=hex_int(board["ram_bytes"]),
        stack_size=stack,
    )
    pio = board["platformio"]
    manifest = {
        "name": board.name,
        "vendor": "tinysmile",
        "url": "https://www.qemu.org/docs/master/system/arm/mps2.html",
        "frameworks": [],
        "build": {
            "cpu": board["core"],
            "mcu": board.qemu.get("machine", board["core"]),
            "f_cpu": f"{board['clock_hz']}L",
            "tinysmile_cflags": list(board["cflags"]),
            "ldscript": "$PROJECT_DIR/link.ld",
        },
        "upload": {
            "maximum_size": board["flash_bytes"],
            "maximum_ram_size": board["ram_bytes"],
            "protocol": "qemu" if board.emulated else "default",
        },
    }
    (out / "boards").mkdir(parents=True, exist_ok=True)
    (out / "boards" / f"{pio['board']}.json").write_text(json.dumps(manifest, indent=2) + "\n")

    from tinysmile.device.app import app_tag

    options = [("platform", platform_uri(pio["platform"])), ("board", pio["board"])]
    if pio.get("framework"):
        options.append(("framework", pio["framework"]))
    options += [
        ("custom_tinysmile_board", board.id),
        # The emulator is recorded under this: an app firmware must not pass for the
        # harness that verify/profile would otherwise reuse.
        (
            "custom_tinysmile_model_sha256",
            report["sha256"] if mode == "harness" else app_tag(report["sha256"]),
        ),
        ("monitor_speed", str(board.serial.get("baud", 115200))),
    ]
    includes = ["model", "tsm", "tsm/protocol", f"tsm/{main_dir}", "tsm/port", "tsm/kernels"]
    build_flags = [
        "-std=c99",
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        *(["-DTSM_LAYER_HOOKS"] if mode == "harness" else []),
        f"-DTSM_PROTO_MAX_PAYLOAD={max_payload}u",
        f"-DTSM_PORT_CPU_HZ={board['clock_hz']}u",
        f"-DTSM_PORT_BAUD={board.serial.get('baud', 115200)}u",
        *[f"-I$PROJECT_DIR/src/{d}" for d in includes],
    ]
    (out / "platformio.ini").write_text(
        render(
            f"{tpl}/platformio.ini.j2",
            version=__version__,
            board_id=board.id,
            model_name=report["model"],
            env_name=ENV_NAME,
            options=options,
            build_flags=build_flags,
        )
    )
    (out / "tinysmile.json").write_text(
        json.dumps(
            {
                "board": board.id,
                "model": str(bundle.model_path),
                "sha256": report["sha256"],
                "perturb_layer": perturb_layer,
                "mode": mode,
                "report": report,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    return Project(out, board, bundle, compiled, stack, max_payload)


def platform_uri(platform: str) -> str:
    """A board's PlatformIO platform: a folder under boards/ is a local platform."""
    local = boards_dir() / platform
    if local.is_dir():
        return f"symlink://{local.resolve()}"
    return platform


def _pio_env() -> dict[str, str]:
    env = dict(os.environ)
    # No update checks or telemetry: offline machines would wait on them.
    env.setdefault("PLATFORMIO_SETTING_ENABLE_TELEMETRY", "No")
    env.setdefault("PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL", "3650")
    env.setdefault("PLATFORMIO_SETTING_CHECK_PRUNE_SYSTEM_THRESHOLD", "0")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_pio(
    project: Project,
    target: str | None = None,
    timeout: float = 600.0,
    log: Path | None = None,
    upload_port: str | None = None,
) -> None:
    """`pio run` (optionally -t target) in the project; the log goes to pio-<target>.log.

    A board whose platform PlatformIO does not hold yet needs the registry: when that is
    out of reach the error says so, and what to do, instead of PlatformIO's timeouts."""
    from tinysmile.device import pio

    pio.ensure_scons()
    settings = project.board.get("platformio", {})
    platform = settings.get("platform", "")
    remote = not (boards_dir() / platform).is_dir()
    offline = pio.offline_message(
        project.board.id,
        settings,
        pio.project_option(project.dir / "platformio.ini", ENV_NAME, "lib_deps") if remote else [],
    )
    if remote and not pio.platform_installed(platform) and not pio.registry_reachable():
        raise TinysmileError(offline)
    cmd = [sys.executable, "-m", "platformio", "run", "-d", str(project.dir), "-e", ENV_NAME]
    if target:
        cmd += ["-t", target]
    if upload_port:
        cmd += ["--upload-port", upload_port]
    log = log or project.dir / f"pio-{target or 'build'}.log"
    try:
        with open(log, "wb") as fh:
            proc = subprocess.run(
                cmd,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=_pio_env(),
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
    except subprocess.TimeoutExpired:
        raise TinysmileError(f"`pio run` took over {timeout:.0f} s; log: {log}") from None
    if proc.returncode != 0:
        text = log.read_text(errors="replace")
        if remote and pio.looks_offline(text):
            raise TinysmileError(f"{offline} (log: {log})")
        overflow = [ln for ln in text.splitlines() if "overflowed by" in ln]
        if overflow:
            raise TinysmileError(
                f"the firmware does not fit {project.board.id}: "
                f"{overflow[0].split(': ')[-1].strip()}; log: {log}"
            )
        tail = [ln for ln in text.splitlines() if ln.strip()][-6:]
        raise TinysmileError(f"`pio run` failed (log: {log}): " + " | ".join(tail))


def elf_sizes(elf: Path) -> dict[str, int]:
    """Section sizes of the firmware (pyelftools ships with PlatformIO)."""
    from elftools.elf.elffile import ELFFile

    sizes: dict[str, int] = {}
    with open(elf, "rb") as fh:
        for sec in ELFFile(fh).iter_sections():
            if sec["sh_flags"] & 0x2:  # SHF_ALLOC: occupies memory on the device
                sizes[sec.name] = sizes.get(sec.name, 0) + int(sec["sh_size"])
    return sizes


def memory_summary(project: Project) -> dict[str, int]:
    """RAM and flash of the built firmware, split the way the bench reports them."""
    s = elf_sizes(project.elf)
    text = s.get(".text", 0) + s.get(".ARM.exidx", 0)
    rodata = s.get(".rodata", 0)
    data = s.get(".data", 0)
    bss = s.get(".bss", 0)
    stack = s.get(".stack", project.stack_bytes)
    return {
        "flash_text": text,
        "flash_rodata": rodata,
        "flash_data_init": data,
        "flash_total": text + rodata + data,
        "ram_data": data,
        "ram_bss": bss,
        "ram_stack": stack,
        "ram_arena": int(project.report["arena_bytes"]),
        "ram_total": data + bss + stack,
        "weights_bytes": int(project.report["weights_bytes"]),
    }
