"""`tinysmile pi ...`: the smiling bot on a Raspberry Pi (or any Linux machine)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from tinysmile.errors import TinysmileError


@click.group("pi")
def pi_group() -> None:
    """The Raspberry Pi fallback runtime: camera, face crop, model, LED."""


@pi_group.command("run")
@click.argument("model", required=False)
@click.option(
    "--camera",
    default="picamera2",
    show_default=True,
    help="picamera2, opencv:N (a capture device), folder:DIR or video:FILE.",
)
@click.option(
    "--trigger",
    type=click.Choice(["button", "continuous"]),
    default="continuous",
    show_default=True,
    help="One frame per nose press, or frames back to back.",
)
@click.option("--button-pin", type=int, default=17, show_default=True, help="GPIO number.")
@click.option("--led-pin", type=int, default=27, show_default=True, help="GPIO number.")
@click.option("--no-gpio", is_flag=True, help="No pins (a machine without GPIO).")
@click.option(
    "--detector",
    type=click.Choice(["haar", "blazeface", "blazeface-aligned", "tiny", "none"]),
    default="blazeface",
    show_default=True,
    help="Face detector. blazeface-aligned: BlazeFace, then the face turned so that its eyes "
    "are level (a bundle whose spec says face_crop blazeface-aligned gets it from blazeface); "
    "tiny: tinysmile's int8 face finder, the microcontroller app's, as the same C (the "
    "board's boxes on the same frame); none: frames are face crops already.",
)
@click.option(
    "--engine",
    type=click.Choice(["litert", "native"]),
    default="litert",
    show_default=True,
    help="LiteRT's interpreter, or the model compiled to C (a shared library).",
)
@click.option(
    "--log",
    "log_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Keep every decided frame here (crop, frame, result).",
)
@click.option("--log-budget", default="500MB", show_default=True, help="Size cap of --log.")
@click.option(
    "--log-frame-side",
    type=int,
    default=640,
    show_default=True,
    help="Whole frames are logged with their long side at most this (0: no frames).",
)
@click.option(
    "--explain",
    is_flag=True,
    help="With --log: also keep each logged crop's occlusion map (map.png; what the model "
    "looked at, as `tinysmile explain` draws it). About 121 more inferences a logged frame.",
)
@click.option(
    "--mcu",
    default="none",
    show_default=True,
    help="auto, a serial PORT, or none: hand frames to a board answering HELLO with this "
    "model's hash; the Pi decides whenever it does not answer.",
)
@click.option("--board", "board_id", default=None, help="The --mcu board's file in boards/.")
@click.option("--max-frames", type=int, default=None, help="Stop after this many frames.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per frame (JSON Lines).")
def run_cmd(
    model: str | None,
    camera: str,
    trigger: str,
    button_pin: int,
    led_pin: int,
    no_gpio: bool,
    detector: str,
    engine: str,
    log_dir: Path | None,
    log_budget: str,
    log_frame_side: int,
    explain: bool,
    mcu: str,
    board_id: str | None,
    max_frames: int | None,
    as_json: bool,
) -> None:
    """Run the smiling bot with MODEL (default: the bundled smile model). With an attitude
    bundle (negative, neutral, positive) the status line shows the attitude, its three
    probabilities and a rolling history of the last ones; the LED lights for positive."""
    from tinysmile.pi.camera import open_camera
    from tinysmile.pi.capturelog import CaptureLog, parse_size
    from tinysmile.pi.gpio import Pins
    from tinysmile.pi.loop import Bot, load_pi_bundle

    bundle = load_pi_bundle(model)
    budget = parse_size(log_budget)
    if no_gpio and trigger == "button":
        raise TinysmileError("--trigger button needs the button: drop --no-gpio")
    if explain and log_dir is None:
        raise TinysmileError("--explain keeps maps in the capture log: give --log DIR too")
    log = CaptureLog(log_dir, budget, log_frame_side) if log_dir is not None else None
    offload = None
    if mcu != "none" and len(bundle.labels) > 2:
        raise TinysmileError(
            "--mcu: the board's app decides smiles; an attitude bundle runs on the Pi"
        )
    if mcu != "none":
        from tinysmile.pi.offload import Offload, auto_port

        port = auto_port(bundle, board_id) if mcu == "auto" else mcu
        offload = Offload(bundle, port, board_id, log=lambda m: click.echo(m, err=True))
    # Camera and pins first: a wrong one is reported before the models load.
    cam = open_camera(camera)
    pins = None
    try:
        if not no_gpio:
            pins = Pins(led_pin, button_pin if trigger == "button" else None)
        bot = Bot(
            bundle,
            detector=detector,
            engine=engine,
            pins=pins,
            log=log,
            offload=offload,
            explain=explain,
        )
    except BaseException:
        cam.close()
        if pins is not None:
            pins.close()
        raise
    try:
        tty = sys.stderr.isatty() and not as_json

        def emit(record: dict) -> None:
            if as_json:
                click.echo(json.dumps(record, sort_keys=True))
            elif tty:
                click.echo("\r\033[K" + bot.stats.line(), nl=False, err=True)

        try:
            stats = bot.run(cam, trigger=trigger, emit=emit, max_frames=max_frames)
        except KeyboardInterrupt:
            stats = bot.stats
        if tty:
            click.echo(err=True)
        summary = stats.summary()
        if log is not None:
            summary["log"] = {
                "folder": str(log.root),
                "entries": len(log.entries),
                "bytes": log.used,
                "budget": log.budget,
                "dropped": log.dropped,
            }
        if as_json:
            click.echo(json.dumps({"summary": summary}, sort_keys=True))
        elif "attitudes" in summary:
            counts = ", ".join(f"{n} {k}" for k, n in summary["attitudes"].items())
            click.echo(
                f"{summary['frames']} frames, {summary['faces']} with a face ({counts}), "
                f"{summary['fps']} fps; engines {summary['by_engine']}"
            )
            click.echo(f"history: {stats.history_line()}")
        else:
            click.echo(
                f"{summary['frames']} frames, {summary['faces']} with a face, "
                f"{summary['smiles']} smiles, {summary['fps']} fps; engines {summary['by_engine']}"
            )
    finally:
        cam.close()
        bot.close()


# A start that fails for the user's reason (a missing camera, a bad option: exit 2, one
# line in the journal) is not retried; a crash is, at most 5 times in 2 minutes, then the
# unit stays failed with its reason rather than restarting every 3 s forever.
UNIT = """[Unit]
Description=tinysmile smiling bot
StartLimitIntervalSec=120
StartLimitBurst=5

[Service]
Type=simple
User={user}
WorkingDirectory={workdir}
{directories}ExecStart={exec_start}
Restart=on-failure
RestartSec=3
RestartPreventExitStatus={user_error}

[Install]
WantedBy=multi-user.target
"""
STATE_ROOT = Path("/var/lib")


def _log_directories(run_args: tuple[str, ...], user: str) -> str:
    """Unit lines that make `--log DIR` exist and belong to the unit's user before it
    starts: systemd's StateDirectory= for a folder under /var/lib (it creates and chowns
    it), else a privileged ExecStartPre that does the same."""
    args = list(run_args)
    log = None
    for i, a in enumerate(args):
        if a == "--log" and i + 1 < len(args):
            log = args[i + 1]
        elif a.startswith("--log="):
            log = a.split("=", 1)[1]
    if log is None:
        return ""
    path = Path(log)
    if not path.is_absolute():
        raise TinysmileError(f"--log {log}: the service needs an absolute log folder")
    if path.is_relative_to(STATE_ROOT) and path != STATE_ROOT:
        return f"StateDirectory={path.relative_to(STATE_ROOT)}\n"
    return f"ExecStartPre=+/usr/bin/install -d -o {user} {shlex.quote(str(path))}\n"


@pi_group.command("install-service")
@click.argument("run_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--name", default="tinysmile-bot", show_default=True)
@click.option("--user", default=None, help="User the bot runs as (default: the current one).")
@click.option(
    "--unit-dir",
    type=click.Path(path_type=Path),
    default=Path("/etc/systemd/system"),
    show_default=True,
)
@click.option("--print", "print_only", is_flag=True, help="Print the unit, write nothing.")
def install_service_cmd(
    run_args: tuple[str, ...], name: str, user: str | None, unit_dir: Path, print_only: bool
) -> None:
    """Write a systemd unit that starts `tinysmile pi run RUN_ARGS...` at boot.

    Then: sudo systemctl daemon-reload && sudo systemctl enable --now NAME.
    """
    import getpass
    import shutil

    exe = shutil.which("tinysmile") or str(Path(sys.executable).with_name("tinysmile"))
    if not Path(exe).is_file():
        raise TinysmileError("cannot find the tinysmile command to start; install the package")
    if any(a in ("--json",) for a in run_args):
        raise TinysmileError("the service logs to the journal: leave --json out")
    exec_start = shlex.join([str(Path(exe).resolve()), "pi", "run", *run_args])
    user = user or getpass.getuser()
    unit = UNIT.format(
        user=user,
        workdir=Path.cwd(),
        directories=_log_directories(run_args, user),
        exec_start=exec_start,
        user_error=TinysmileError.exit_code,
    )
    if print_only:
        click.echo(unit, nl=False)
        return
    path = unit_dir / f"{name}.service"
    try:
        unit_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(unit)
        tmp.replace(path)
    except OSError as exc:
        raise TinysmileError(f"{path}: cannot write ({exc.strerror}); run with sudo") from None
    click.echo(
        f"wrote {path}; start it: sudo systemctl daemon-reload && "
        f"sudo systemctl enable --now {name}"
    )


@click.command("capture")
@click.argument("model", required=False)
@click.option("--board", "board_id", default=None, help="Board file in boards/.")
@click.option("--port", default=None, help="Serial port (default: as --mcu auto finds it).")
@click.option(
    "--log",
    "log_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Capture log folder to add the entry to (as `pi run --log` writes them).",
)
@click.option("--log-budget", default="500MB", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def capture_cmd(
    model: str | None,
    board_id: str | None,
    port: str | None,
    log_dir: Path,
    log_budget: str,
    as_json: bool,
) -> None:
    """Fetch the last frame a board running the smiling-bot app decided on (CAPTURE) into
    a capture log: the model input it saw, its output and decision."""
    from tinysmile.boards import load_board
    from tinysmile.device.app import pixel_table, pixels_from_input, request_capture
    from tinysmile.device.session import client_for
    from tinysmile.pi.capturelog import CaptureLog, parse_size
    from tinysmile.pi.loop import load_pi_bundle
    from tinysmile.pi.offload import auto_port

    bundle = load_pi_bundle(model)
    board = load_board(board_id)
    port = port or auto_port(bundle, board.id)()
    if port is None:
        raise TinysmileError(f"no {board.id} running {bundle.name} found; pass --port")
    log = CaptureLog(log_dir, parse_size(log_budget), frame_side=0)
    client = client_for(board, port)
    try:
        hello = client.handshake()
        if hello.model_sha256 != bundle.model_hash():
            raise TinysmileError(
                f"the board on {port} runs model {hello.model_name!r} "
                f"(sha256 {hello.model_sha256[:12]}…), not {bundle.name!r}"
            )
        cap = request_capture(client, hello.input_size, hello.output_size)
    finally:
        client.close()
    table = pixel_table(bundle, hello.input_scale, hello.input_zero_point)
    h, w = int(hello.input_shape[1]), int(hello.input_shape[2])
    pixels = pixels_from_input(table, cap.input)
    if pixels is None:
        raise TinysmileError(
            f"{bundle.name}: its pixel table is not one to one, so the input cannot be "
            "turned back into an image"
        )
    out = bundle.meta.get("output", {})
    from tinysmile.device.app import smile_index, smile_threshold

    idx = smile_index(bundle, hello.output_size)
    q = int(cap.output[idx])
    meta = {
        "source": f"{board.id}:{port} frame {cap.frames}",
        "face": None,
        "crop": None,
        "probability": (q - hello.output_zero_point) * hello.output_scale,
        "smile": bool(cap.smile),
        "output_int8": q,
        "threshold_int8": smile_threshold(
            bundle,
            float(out.get("scale", hello.output_scale)),
            int(out.get("zero_point", hello.output_zero_point)),
        ),
        "engine": f"mcu:{board.id}",
        "model": bundle.name,
        "model_sha256": hello.model_sha256,
        "frame_crc32": cap.crc,
        "led": cap.led,
    }
    entry = log.add(pixels.reshape(h, w), None, meta)
    if as_json:
        click.echo(json.dumps({**meta, "logged": str(entry) if entry else None}, sort_keys=True))
    else:
        click.echo(
            f"{board.id} on {port}: frame {cap.frames}, "
            f"{'smile' if cap.smile else 'no smile'} (int8 {q}); kept in {entry}"
        )
