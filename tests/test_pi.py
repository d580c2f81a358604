"""The Raspberry Pi runtime on this machine: folder cameras of SMILEsmileD faces placed in
larger scenes, gpiozero's mock pins, the capture log, both engines, and the errors."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from tinysmile.cli import main

SMILES = Path("/work/shared/datasets/smilesmiled/SMILEs")
needs_smilesmiled = pytest.mark.skipif(
    not SMILES.is_dir(), reason=f"needs the SMILEsmileD images in {SMILES}"
)


needs_emulator = pytest.mark.skipif(
    not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")),
    reason="needs qemu-system-arm and arm-none-eabi-gcc (scripts/setup.sh installs them)",
)


def _faces(n: int) -> list[Path]:
    pos = sorted((SMILES / "positives" / "positives7").glob("*.jpg"))
    neg = sorted((SMILES / "negatives" / "negatives7").glob("*.jpg"))
    return [f for pair in zip(pos, neg) for f in pair][:n]


def _scenes(folder: Path, n: int, seed: int = 0) -> list[Path]:
    import cv2

    from tinysmile.data.preprocess import load_image, to_gray
    from tinysmile.pi.scenes import make_scene

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, f in enumerate(_faces(n)):
        # Faces kept away from the frame's edges: Haar needs the whole head in sight.
        scene = make_scene(to_gray(load_image(f)), rng, size=(320, 240), face_side=(100, 130))
        path = folder / f"{i:03d}.png"
        cv2.imwrite(str(path), scene.image)
        out.append(path)
    return out


def _jsonl(text: str) -> tuple[list[dict], dict]:
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [r for r in lines if "summary" not in r], lines[-1]["summary"]


@needs_smilesmiled
@pytest.mark.parametrize("detector,least", [("haar", 8), ("blazeface", 11)])
def test_folder_camera_decides_like_predict_on_the_same_crops(tmp_path, capsys, detector, least):
    frames = _scenes(tmp_path / "frames", 12)
    log = tmp_path / "log"
    args = ["pi", "run", "--camera", f"folder:{tmp_path / 'frames'}", "--no-gpio", "--json"]
    assert main([*args, "--log", str(log), "--detector", detector]) == 0
    records, summary = _jsonl(capsys.readouterr().out)
    assert [r["source"] for r in records] == [str(f) for f in frames]
    found = [r for r in records if r["face"] is not None]
    # Both find most faces placed this way (bench/bench_pi.py gives the rates: Haar about
    # two in three, BlazeFace nearly all); the check needs enough of them and both
    # decisions among them to mean something.
    assert len(found) >= least and summary["faces"] == len(found)
    # The crop the model saw covers the face that was placed there.
    from tinysmile.data.preprocess import load_image, to_gray
    from tinysmile.pi.scenes import make_scene

    rng = np.random.default_rng(0)
    placed = {
        str(p): make_scene(to_gray(load_image(f)), rng, size=(320, 240), face_side=(100, 130)).face
        for p, f in zip(frames, _faces(12), strict=True)
    }
    for r in found:
        assert _iou(r["crop"], placed[r["source"]]) >= 0.5, r
    assert {r["smile"] for r in found} == {True, False}
    crops = [str(Path(r["logged"]) / "crop.png") for r in found]
    # Each entry names its detector (a finder trained on the log leaves centre squares out).
    entries = [json.loads((Path(r["logged"]) / "entry.json").read_text()) for r in found]
    assert {e["detector"] for e in entries} == {detector}
    assert main(["predict", "--json", *_default(), *crops]) == 0
    preds = json.loads(capsys.readouterr().out)["predictions"]
    assert [p["output_int8"] for p in preds] == [r["output_int8"] for r in found]
    assert [p["smile"] for p in preds] == [r["smile"] for r in found]
    for r in records:
        assert set(r["ms"]) >= {"capture", "detect", "preprocess", "infer"}
        assert r["engine"] == ("litert" if r["face"] else None)
        if r["face"] is None:
            assert r["probability"] is None and r["smile"] is False


def _default() -> list[str]:
    from tinysmile.bundle import default_bundle_path

    return [str(default_bundle_path())]


@needs_smilesmiled
def test_led_follows_the_decisions_on_mock_pins(tmp_path):
    from gpiozero.pins.mock import MockFactory

    from tinysmile.bundle import load_bundle
    from tinysmile.pi.camera import FolderCamera
    from tinysmile.pi.gpio import Pins
    from tinysmile.pi.loop import Bot

    _scenes(tmp_path / "frames", 10, seed=1)
    factory = MockFactory()
    bot = Bot(load_bundle(None), pins=Pins(27, None, factory=factory))
    led = factory.pin(27)
    seen = []
    bot.run(FolderCamera(tmp_path / "frames"), emit=lambda r: seen.append((r, led.state)))
    decisions = [r["smile"] for r, _ in seen]
    assert True in decisions and False in decisions
    assert [bool(state) for _, state in seen] == decisions
    # The pin's own history: one change per change of decision, nothing else.
    changes = [decisions[0]] + [b for a, b in itertools.pairwise(decisions) if a != b]
    history = [s.state for s in led.states][1:]  # the first is the pin's initial state
    if not decisions[0]:
        changes = changes[1:]  # off to off is no change
    assert history == changes
    bot.close()


@needs_smilesmiled
def test_one_button_press_takes_exactly_one_frame(tmp_path):
    from gpiozero.pins.mock import MockFactory

    from tinysmile.bundle import load_bundle
    from tinysmile.pi.camera import FolderCamera
    from tinysmile.pi.gpio import Pins
    from tinysmile.pi.loop import Bot

    _scenes(tmp_path / "frames", 4, seed=2)
    factory = MockFactory()
    bot = Bot(load_bundle(None), pins=Pins(27, 17, factory=factory))
    button = factory.pin(17)
    records: list[dict] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=bot.run,
        args=(FolderCamera(tmp_path / "frames"),),
        kwargs={"trigger": "button", "emit": records.append, "stop": stop},
    )
    thread.start()

    def settle(want: int) -> None:
        deadline = time.monotonic() + 10
        while len(records) < want and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # long enough for a second, unwanted frame to show up

    try:
        settle(0)
        assert records == []  # no press, no frame
        for n in (1, 2):
            button.drive_low()  # pressed (the button pulls up)
            button.drive_high()
            settle(n)
            assert len(records) == n
        assert [Path(r["source"]).name for r in records] == ["000.png", "001.png"]
    finally:
        stop.set()
        thread.join(timeout=10)
        bot.close()
    assert not thread.is_alive()


@needs_smilesmiled
def test_native_engine_equals_litert_byte_for_byte(tmp_path, capsys):
    from tinysmile.bundle import load_bundle
    from tinysmile.data.preprocess import load_image, preprocess
    from tinysmile.pi.engine import LiteRTEngine, NativeEngine
    from tinysmile.train.infer import Runner

    runner = Runner(load_bundle(None))
    native = NativeEngine(runner, workdir=tmp_path / "native")
    litert = LiteRTEngine(runner)
    crops = [preprocess(runner.spec, load_image(f)) for f in _faces(16)]
    rng = np.random.default_rng(3)
    shape = (runner.spec.height, runner.spec.width, 1)
    crops += [rng.integers(0, 256, size=shape, dtype=np.uint8) for _ in range(8)]
    outs = {}
    for name, eng in (("native", native), ("litert", litert)):
        outs[name] = np.stack([eng.run(runner.quantize_input(c)) for c in crops])
    assert_array_equal(outs["native"], outs["litert"])
    assert len(set(outs["litert"][:, 0].tolist())) > 4  # not a constant output
    # and through the command: the same records, engine apart
    _scenes(tmp_path / "frames", 6, seed=4)
    per = {}
    for name in ("litert", "native"):
        args = ["pi", "run", "--camera", f"folder:{tmp_path / 'frames'}", "--no-gpio", "--json"]
        assert main([*args, "--engine", name]) == 0
        records, _ = _jsonl(capsys.readouterr().out)
        per[name] = records
        assert {r["engine"] for r in records if r["face"]} == {name}
    keys = ("source", "face", "output_int8", "probability", "smile")
    strip = {n: [{k: r[k] for k in keys} for r in rs] for n, rs in per.items()}
    assert strip["native"] == strip["litert"]


@needs_smilesmiled
def test_log_keeps_its_budget_loses_nothing_it_keeps_and_reimports(tmp_path, capsys):
    import cv2

    from tinysmile.bundle import load_bundle
    from tinysmile.data.store import Store
    from tinysmile.pi.capturelog import CROP_FILE, ENTRY_FILE, entry_folders

    spec = load_bundle(None).preprocess
    side = (spec["height"], spec["width"])  # the default model's input
    _scenes(tmp_path / "frames", 16, seed=5)
    log = tmp_path / "log"
    # A crash left a half-written entry: it must not survive the next start.
    (log / ".part-000000001-20260101T000000.000000Z").mkdir(parents=True)
    (log / ".part-000000001-20260101T000000.000000Z" / CROP_FILE).write_bytes(b"\x89PNG half")
    budget = 60_000
    args = ["pi", "run", "--camera", f"folder:{tmp_path / 'frames'}", "--no-gpio", "--json"]
    assert main([*args, "--log", str(log), "--log-budget", str(budget)]) == 0
    records, summary = _jsonl(capsys.readouterr().out)
    logged = [r for r in records if r.get("logged")]
    kept = entry_folders(log)
    size = sum(f.stat().st_size for e in kept for f in e.iterdir())
    assert size <= budget and summary["log"]["bytes"] == size
    assert summary["log"]["dropped"] > 0  # the budget was reached: oldest went first
    assert sorted(p.name for p in log.iterdir()) == [p.name for p in kept]  # no leftovers
    # What it keeps is the newest entries, whole: the crop is exactly the model's input.
    assert [Path(r["logged"]) for r in logged[-len(kept) :]] == kept
    for r, entry in zip(logged[-len(kept) :], kept, strict=True):
        meta = json.loads((entry / ENTRY_FILE).read_text())
        for k in ("face", "probability", "smile", "output_int8", "engine"):
            assert meta[k] == r[k]
        assert len(meta["model_sha256"]) == 64
        crop = cv2.imread(str(entry / CROP_FILE), cv2.IMREAD_UNCHANGED)
        assert crop.shape == side and crop.dtype == np.uint8
        assert (entry / "frame.jpg").is_file()
    store = tmp_path / "store"
    for added in (len(kept), 0):  # the second import adds nothing
        assert main(["data", "import", "captures", str(log), "--store", str(store), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["added"] == added
    with Store(store) as s:
        rows = s.query("SELECT label, source, original FROM samples ORDER BY original")
        assert s.samples() == []  # unlabelled: not training data until rated
    assert rows == [(None, "captures", str(e)) for e in kept]


def test_framing_follows_the_spec():
    from tinysmile.data.preprocess import PreprocessSpec, framed_crop

    # SMILEsmileD's framing: 0.76 of a 100-px box, centred 7.6 px lower; the corner is
    # floored, as the centring always did: y0 = floor(100 + 7.6 - 38) = 69
    spec = PreprocessSpec(crop_margin=-0.12, crop_shift_y=0.076)
    assert framed_crop(spec, (100, 50, 100, 100), 480, 640) == (112, 69, 76, 76)
    # a loose framing slides back inside the frame rather than shrinking
    loose = PreprocessSpec(crop_margin=0.5)
    assert framed_crop(loose, (0, 0, 100, 100), 480, 640) == (0, 0, 200, 200)
    assert framed_crop(spec, None, 480, 640) == (80, 0, 480, 480)


def _run_err(args: list[str], capsys) -> tuple[int, str]:
    rc = main(args)
    return rc, capsys.readouterr().err.strip()


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "a.png").write_bytes(b"this is no png")
    base = ["pi", "run", "--no-gpio"]
    cases = [
        ([*base, "--camera", f"folder:{frames}"], "a.png: not a readable image"),
        ([*base, "--camera", f"folder:{tmp_path / 'nope'}"], "no such folder"),
        ([*base, "--camera", "opencv:97"], "camera opencv:97: cannot be opened"),
        ([*base, "--camera", f"video:{tmp_path / 'x.mp4'}"], "no such video file"),
        ([*base, "--camera", "webcam"], "use one of"),
        ([*base, "--camera", f"folder:{frames}", "--log-budget", "lots"], "--log-budget"),
    ]
    from tinysmile.bundle import default_bundle_path

    bare = default_bundle_path() / "model.tflite"
    cases.append(([*base[:2], str(bare), "--no-gpio"], "no preprocessing spec"))
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    cases.append(
        (
            ["pi", "run", "--camera", f"folder:{frames}", "--trigger", "button"]
            + ["--button-pin", "5", "--led-pin", "5"],
            "GPIO: pin GPIO5 is already in use",
        )
    )
    for args, want in cases:
        rc, err = _run_err(args, capsys)
        assert rc == 2, args
        assert err.startswith("error: ") and want in err and "\n" not in err, (args, err)


def test_install_service_writes_a_unit(tmp_path, capsys):
    args = ["pi", "install-service", "--unit-dir", str(tmp_path), "--user", "pi", "--"]
    assert main([*args, "--camera", "picamera2", "--trigger", "button"]) == 0
    unit = (tmp_path / "tinysmile-bot.service").read_text()
    assert "User=pi" in unit and "WantedBy=multi-user.target" in unit
    exec_line = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_line.endswith("pi run --camera picamera2 --trigger button")
    # A user's error (exit 2) is reported once, not restarted every 3 s forever; the bot
    # needs no network, so it does not wait for one.
    assert "RestartPreventExitStatus=2" in unit and "StartLimitBurst=" in unit
    assert "network-online" not in unit
    assert "StateDirectory" not in unit and "ExecStartPre" not in unit  # no --log


@pytest.mark.parametrize(
    "log, line",
    [
        ("/var/lib/bot", "StateDirectory=bot"),
        ("/var/lib/bot/frames", "StateDirectory=bot/frames"),
        ("/srv/bot logs", "ExecStartPre=+/usr/bin/install -d -o pi '/srv/bot logs'"),
    ],
)
def test_the_service_makes_its_log_folder_for_its_user(tmp_path, log, line):
    """`--log DIR` as the README writes it: the unit creates DIR for the unit's user (the
    first version failed as user pi with "cannot create (Permission denied)")."""
    args = ["pi", "install-service", "--unit-dir", str(tmp_path), "--user", "pi", "--"]
    assert main([*args, "--camera", "picamera2", "--log", log]) == 0
    unit = (tmp_path / "tinysmile-bot.service").read_text()
    assert line in unit.splitlines()
    assert main([*args, "--camera", "picamera2", "--log", "relative/dir"]) == 2


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_systemd_accepts_the_unit(tmp_path):
    """systemd's own check of the unit, warnings included (it exits 0 on unknown keys)."""
    args = ["pi", "install-service", "--unit-dir", str(tmp_path), "--user", "root", "--"]
    assert main([*args, "--camera", "folder:/tmp", "--log", "/var/lib/tinysmile-test"]) == 0
    unit = tmp_path / "tinysmile-bot.service"
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr
    unit.write_text(unit.read_text().replace("StartLimitBurst", "StartLimitBurts"))
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert "Unknown key" in proc.stderr  # the check above can fail


@pytest.mark.slow
@needs_smilesmiled
@needs_emulator
@pytest.mark.parametrize("mode", ["app", "harness"])
def test_mcu_offload_fails_over_and_comes_back(tmp_path, mode):
    """The emulated board (QEMU, real pty) running the smiling-bot app (FRAME) or the
    harness (INFER) takes the frames; killed mid-run, the Pi decides the very next frame
    itself; booted again, it is used again. Every frame is decided exactly once, with the
    same bytes either way."""
    from tinysmile.boards import load_board
    from tinysmile.bundle import load_bundle
    from tinysmile.device import emulator
    from tinysmile.device.pio import run_pio
    from tinysmile.device.project import generate_project
    from tinysmile.pi.camera import FolderCamera
    from tinysmile.pi.loop import Bot
    from tinysmile.pi.offload import Offload

    board = load_board("qemu-cortex-m4")
    bundle = load_bundle(None)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, f in enumerate(_faces(12)):
        (frames / f"{i:03d}.jpg").write_bytes(f.read_bytes())
    project = generate_project(bundle, board, tmp_path / "fw", mode=mode)
    run_pio(project)

    def boot() -> emulator.EmulatorState:
        from tinysmile.device.session import client_for

        emu = emulator.start(board, project.elf, "", register=False, icount=False)
        client = client_for(board, emu.port)  # wait until the firmware answers
        try:
            client.handshake()
        finally:
            client.close()
        return emu

    st = {"emu": boot()}
    offload = Offload(bundle, lambda: st["emu"].port if st["emu"] else None, retry_s=0.0)
    bot = Bot(load_bundle(None), detector="none", offload=offload)
    local = Bot(load_bundle(None), detector="none")
    records: list[dict] = []

    def emit(r: dict) -> None:
        records.append(r)
        if len(records) == 4:
            emulator.kill(st["emu"])  # the board dies between frames 4 and 5
            st["emu"] = None
        elif len(records) == 8:
            st["emu"] = boot()  # and is back for frame 9

    try:
        bot.run(FolderCamera(frames), emit=emit)
    finally:
        if st["emu"] is not None:
            emulator.kill(st["emu"])
        bot.close()
    assert [Path(r["source"]).name for r in records] == [f"{i:03d}.jpg" for i in range(12)]
    engines = [r["engine"] for r in records]
    assert engines[:4] == ["mcu"] * 4
    assert engines[4:8] == ["litert"] * 4  # the first frame after the kill, already
    assert engines[8:] == ["mcu"] * 4
    want = [local.step(frame)["output_int8"] for frame in FolderCamera(frames)]
    assert [r["output_int8"] for r in records] == want
    assert offload.failovers == 1 and offload.reconnects == 2 and offload.mode == mode
    assert offload.camera is None  # no finder: the Pi's crops, never whole frames


def _iou(a, b) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


@pytest.mark.slow
@needs_smilesmiled
@needs_emulator
def test_mcu_auto_finds_the_app_and_capture_brings_back_what_it_saw(tmp_path, monkeypatch, capsys):
    """The smiling-bot app on the emulated board answers HELLO with the model's hash: `pi
    run --mcu auto` hands it every frame (FRAME) and gets the host's bytes back; `tinysmile
    capture` then fetches the last frame the model saw (CAPTURE) into a capture log."""
    import cv2

    from tinysmile.boards import load_board
    from tinysmile.bundle import load_bundle
    from tinysmile.device import emulator
    from tinysmile.device.pio import run_pio
    from tinysmile.device.project import firmware_tag, generate_project

    monkeypatch.setenv("TINYSMILE_STATE_DIR", str(tmp_path / "state"))
    board = load_board("qemu-cortex-m4")
    bundle = load_bundle(None)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, f in enumerate(_faces(6)):
        (frames / f"{i:03d}.jpg").write_bytes(f.read_bytes())
    project = generate_project(bundle, board, tmp_path / "fw", mode="app")
    run_pio(project)
    st = emulator.start(
        board, project.elf, firmware_tag(bundle.model_hash(), mode="app"), icount=False
    )
    try:
        # Booted: it answers HELLO. (A board still booting is decided around, locally, and
        # tried again 2 s later; six frames from a folder take less than that.)
        from tinysmile.device.session import client_for

        client = client_for(board, st.port)
        try:
            client.handshake()
        finally:
            client.close()
        args = ["pi", "run", "--camera", f"folder:{frames}", "--detector", "none", "--no-gpio"]
        assert main([*args, "--json", "--mcu", "auto"]) == 0
        on_board, summary = _jsonl(capsys.readouterr().out)
        assert main([*args, "--json"]) == 0
        local, _ = _jsonl(capsys.readouterr().out)
        assert [r["engine"] for r in on_board] == ["mcu"] * 6
        assert summary["offload"]["failovers"] == 0
        keys = ("source", "output_int8", "smile")
        assert [[r[k] for k in keys] for r in on_board] == [[r[k] for k in keys] for r in local]
        assert {r["smile"] for r in local} == {True, False}
        log = tmp_path / "captured"
        assert main(["capture", "--log", str(log), "--json"]) == 0
        got = json.loads(capsys.readouterr().out)
    finally:
        emulator.stop(board.id)
    assert got["output_int8"] == local[-1]["output_int8"]
    assert got["smile"] == local[-1]["smile"] and got["source"].endswith("frame 6")
    from tinysmile.data.preprocess import PreprocessSpec, load_image, preprocess

    want = preprocess(PreprocessSpec.from_dict(bundle.preprocess), load_image(frames / "005.jpg"))
    crop = cv2.imread(str(Path(got["logged"]) / "crop.png"), cv2.IMREAD_UNCHANGED)
    assert_array_equal(crop, want[:, :, 0])


@pytest.mark.slow
@needs_smilesmiled
@needs_emulator
def test_mcu_with_a_finder_takes_whole_frames(tmp_path, monkeypatch, capsys):
    """The app flashed with the face finder says so in HELLO (its camera frame, the finder's
    hash): `pi run --mcu auto` then sends it whole frames, and the board's face, square,
    crop and output equal `pi run --detector tiny` on the Pi (the same C); a frame with no
    face is decided on the board as no face. A photo of another size is letterboxed into
    the camera frame, and the board's box comes back in the photo's pixels."""
    import cv2

    from tinysmile.boards import load_board
    from tinysmile.bundle import load_bundle
    from tinysmile.device import emulator
    from tinysmile.device.bot import resolve_detector
    from tinysmile.device.pio import run_pio
    from tinysmile.device.project import firmware_tag, generate_project
    from tinysmile.device.session import client_for

    monkeypatch.setenv("TINYSMILE_STATE_DIR", str(tmp_path / "state"))
    board = load_board("qemu-cortex-m4")
    bundle = load_bundle(None)
    finder = resolve_detector("bundled", board)
    frames = tmp_path / "frames"
    _scenes(frames, 3, seed=3)
    cv2.imwrite(str(frames / "003.png"), np.full((240, 320), 90, dtype=np.uint8))
    project = generate_project(bundle, board, tmp_path / "fw", mode="app", finder=finder)
    run_pio(project)
    tag = firmware_tag(bundle.model_hash(), mode="app", finder_sha256=finder.model_hash())
    st = emulator.start(board, project.elf, tag, icount=False)
    try:
        client = client_for(board, st.port)
        try:
            hello = client.handshake()
        finally:
            client.close()
        assert hello.camera == (320, 240) and hello.finder_sha256 == finder.model_hash()
        args = ["pi", "run", "--camera", f"folder:{frames}", "--detector", "tiny", "--no-gpio"]
        assert main([*args, "--json", "--mcu", "auto"]) == 0
        out = capsys.readouterr()
        on_board, summary = _jsonl(out.out)
        assert "whole 320x240 frames go there" in out.err
        assert main([*args, "--json"]) == 0
        local, _ = _jsonl(capsys.readouterr().out)
        # A 640x480 photo: letterboxed on the way to the board (a 2x enlargement here).
        big = tmp_path / "big"
        big.mkdir()
        scene = cv2.imread(str(frames / "000.png"), cv2.IMREAD_GRAYSCALE)
        doubled = scene.repeat(2, axis=0).repeat(2, axis=1)
        cv2.imwrite(str(big / "000.png"), doubled)
        big_args = ["pi", "run", "--camera", f"folder:{big}", "--detector", "tiny", "--no-gpio"]
        assert main([*big_args, "--json", "--mcu", "auto"]) == 0
        big_board, _ = _jsonl(capsys.readouterr().out)
    finally:
        emulator.stop(board.id)
    assert [r["engine"] for r in on_board] == ["mcu"] * 4
    assert summary["offload"]["failovers"] == 0
    keys = ("source", "face", "crop", "output_int8", "smile")
    assert [[r.get(k) for k in keys] for r in on_board] == [[r.get(k) for k in keys] for r in local]
    assert all(r["face"] is not None for r in local[:3]) and local[3]["face"] is None
    # The scene doubled by repeating pixels: letterboxed back, the board sees the scene
    # itself (each 2x2 block averages to its pixel), so its box is the scene's, doubled.
    assert big_board[0]["engine"] == "mcu"
    assert big_board[0]["face"] == [2 * v for v in local[0]["face"]]
    assert big_board[0]["output_int8"] == local[0]["output_int8"]


@needs_smilesmiled
def test_a_video_camera_ends_with_its_frames_and_no_tensorflow_is_loaded(tmp_path):
    """Run in a fresh interpreter: the Pi has no TensorFlow, and nothing may import it."""
    import subprocess
    import sys

    import cv2

    frames = _scenes(tmp_path / "frames", 5, seed=6)
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (320, 240))
    for f in frames:
        writer.write(cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), cv2.COLOR_GRAY2BGR))
    writer.release()
    code = (
        "import sys; from tinysmile.cli import main; "
        f"rc = main(['pi', 'run', '--camera', 'video:{video}', '--no-gpio', '--json']); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'; sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    records, summary = _jsonl(proc.stdout)
    assert [r["source"] for r in records] == [f"frame {i}" for i in range(1, 6)]
    assert summary["frames"] == 5 and summary["faces"] >= 4


def test_log_order_survives_a_clock_that_goes_back(tmp_path, monkeypatch):
    """A Pi without a clock battery may boot into the past: the oldest entry is still the
    first one dropped."""
    from tinysmile.pi import capturelog
    from tinysmile.pi.capturelog import CaptureLog, entry_folders, read_entry

    crop = np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)
    log = CaptureLog(tmp_path / "log", budget=10**6)
    first = [log.add(crop, None, {"n": i}) for i in range(2)]
    size = log.used // 2
    monkeypatch.setattr(capturelog.time, "time", lambda: 86400.0)  # 1970 again
    again = CaptureLog(tmp_path / "log", budget=3 * size)  # room for three
    newer = [again.add(crop, None, {"n": i}) for i in (2, 3)]
    kept = entry_folders(tmp_path / "log")
    assert kept == [first[1], *newer] and again.dropped == 1
    assert [read_entry(p)["n"] for p in kept] == [1, 2, 3]


def test_picamera2_camera_takes_the_luma_plane(monkeypatch):
    """Against a stand-in for picamera2's documented calls (the real one needs a Pi): a
    YUV420 capture is (3/2 h, w); its first h rows are the grey frame."""
    import sys
    import types

    from tinysmile.errors import TinysmileError
    from tinysmile.pi.camera import open_camera

    monkeypatch.setitem(sys.modules, "picamera2", None)  # not installed
    with pytest.raises(TinysmileError, match="python3-picamera2"):
        open_camera("picamera2")

    calls = []

    class FakePicamera2:
        def create_still_configuration(self, main):
            calls.append(("config", main))
            return {"main": main}

        def configure(self, config):
            calls.append(("configure", config["main"]["format"]))

        def start(self):
            calls.append(("start",))

        def capture_array(self, name):
            w, h = calls[0][1]["size"]
            yuv = np.zeros((h * 3 // 2, w), dtype=np.uint8)
            yuv[:h] = (np.arange(w) % 256).astype(np.uint8)[None, :]
            yuv[h:] = 255  # chroma must not leak into the grey frame
            return yuv

        def stop(self):
            calls.append(("stop",))

        def close(self):
            calls.append(("close",))

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    cam = open_camera("picamera2")
    frame = cam.read()
    cam.close()
    assert frame.source == "frame 1" and frame.image.shape == (480, 640)
    want = np.tile((np.arange(640) % 256).astype(np.uint8), (480, 1))
    assert_array_equal(frame.image, want)  # luma rows only, no chroma
    assert ("configure", "YUV420") in calls and calls[-2:] == [("stop",), ("close",)]


def test_the_wiring_picture_shows_the_pins_the_code_uses(tmp_path):
    """docs/wiring.svg is what scripts/draw_wiring.py draws from `pi run`'s pin defaults: a
    changed default fails here until the picture is drawn again."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "scripts" / "draw_wiring.py"
    spec = importlib.util.spec_from_file_location("draw_wiring", script)
    draw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(draw)
    button, led = draw.pins()
    assert (button, led) == (17, 27)  # the README's wiring and parts list say these
    assert draw.physical(button) == 11 and draw.physical(led) == 13
    svg = draw.draw()
    assert f"GPIO{button} (pin 11)" in svg and f"GPIO{led} (pin 13)" in svg
    committed = script.parent.parent / "docs" / "wiring.svg"
    assert committed.read_text(encoding="utf-8") == svg


@needs_smilesmiled
def test_explain_keeps_a_map_per_logged_frame(tmp_path, capsys):
    """`pi run --log DIR --explain`: each entry also holds map.png, the occlusion map of the
    crop it logged, as tinysmile.train.explain draws it from that crop."""
    import cv2

    from tinysmile.bundle import load_bundle
    from tinysmile.train.explain import heat_image, occlusion_map
    from tinysmile.train.infer import Runner

    frames = tmp_path / "frames"
    frames.mkdir()
    for i, f in enumerate(_faces(2)):
        (frames / f"{i:03d}.jpg").write_bytes(f.read_bytes())
    args = ["pi", "run", "--camera", f"folder:{frames}", "--no-gpio", "--detector", "none"]
    assert main([*args, "--explain"]) == 2  # maps live in the log: --log is needed
    capsys.readouterr()
    log = tmp_path / "log"
    assert main([*args, "--json", "--log", str(log), "--explain"]) == 0
    records, _ = _jsonl(capsys.readouterr().out)
    runner = Runner(load_bundle(None))
    assert len(records) == 2
    for r in records:
        entry = Path(r["logged"])
        crop = cv2.imread(str(entry / "crop.png"), cv2.IMREAD_UNCHANGED)
        m = occlusion_map(runner, crop[:, :, None])
        want = heat_image(crop, m, float(np.abs(m).max()))
        assert_array_equal(cv2.imread(str(entry / "map.png")), want)
