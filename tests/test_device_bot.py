"""The smiling bot's whole-frame pipeline (firmware/app/tsm_bot.c): camera frame -> face
finder -> box -> framing rule -> crop -> smile model, on the emulated board against the
host's build of the same C (tinysmile.device.bot.HostBot), and HostBot against an
independent composition of the numpy twins and LiteRT's reference kernels.

The finder is an untrained one (random weights: its boxes are arbitrary, but must still be
byte-equal); its threshold is set per test through a copy of its bundle: -128 always finds
a face, 128 never does, and the median best-cell score over the device frames splits them.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tinysmile.boards import load_board
from tinysmile.bundle import load_bundle

BOARD = "qemu-cortex-m4"
SMILES = Path("/work/shared/datasets/smilesmiled/SMILEs")
FW, FH = 320, 240
# 24 frames: 21 faces (smiling and not, alternately) and 3 without (black, grey, a bare
# scene). A frame's 76,800 bytes cross the emulated UART byte by byte: the frame count is
# most of this file's time.
DEVICE_FRAMES = 24
DEVICE_SEED = 21

needs_smiles = pytest.mark.skipif(
    not SMILES.is_dir(), reason=f"needs the SMILEsmileD images in {SMILES}"
)
needs_emulator = pytest.mark.skipif(
    not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")),
    reason="needs qemu-system-arm and arm-none-eabi-gcc (scripts/setup.sh installs them)",
)
pytestmark = [needs_smiles]


def _with_threshold(src: Path, dst: Path, threshold: int):
    """A copy of a finder bundle deciding "face" at another int8 score."""
    shutil.copytree(src, dst)
    meta = json.loads((dst / "bundle.json").read_text())
    meta["finder"]["score_threshold_int8"] = threshold
    (dst / "bundle.json").write_text(json.dumps(meta, indent=2))
    return load_bundle(str(dst))


def _frames(n: int, seed: int) -> list[np.ndarray]:
    """n camera frames: SMILEsmileD faces (smiling and not, alternately) in scenes, and every
    eighth one without a face (black, grey, or a scene's background alone)."""
    from tinysmile.data.preprocess import load_image, to_gray
    from tinysmile.pi.scenes import make_scene

    rng = np.random.default_rng(seed)
    pos = sorted((SMILES / "positives" / "positives7").glob("*.jpg"))
    neg = sorted((SMILES / "negatives" / "negatives7").glob("*.jpg"))
    out = []
    for i in range(n):
        if i % 8 == 7:
            kind = (i // 8) % 3
            if kind == 0:
                out.append(np.zeros((FH, FW), dtype=np.uint8))
            elif kind == 1:
                out.append(np.full((FH, FW), 128, dtype=np.uint8))
            else:
                flat = np.full((64, 64), int(rng.integers(0, 256)), dtype=np.uint8)
                out.append(make_scene(flat, rng).image)
            continue
        files = pos if i % 2 == 0 else neg
        crop = to_gray(load_image(files[(i // 2) % len(files)]))
        out.append(make_scene(crop, rng).image)
    return out


@pytest.fixture(scope="module")
def finders(tmp_path_factory, state):
    """{"always": ..., "never": ..., "split": ...} finder bundles (TensorFlow makes the
    untrained finder; tests only)."""
    pytest.importorskip("tensorflow")
    from tinysmile.device.bot import HostBot
    from tinysmile.finder.bundle import untrained_finder_bundle

    root = tmp_path_factory.mktemp("finders")
    untrained_finder_bundle(root / "untrained", seed=0)
    out = {
        "always": _with_threshold(root / "untrained", root / "always", -128),
        "never": _with_threshold(root / "untrained", root / "never", 128),
    }
    bot = HostBot(load_bundle(None), out["always"], FW, FH)
    scores = [bot.decide(f).score for f in _frames(DEVICE_FRAMES, DEVICE_SEED)]
    split = int(np.median(scores))
    below = sum(s < split for s in scores)
    assert 4 <= below <= DEVICE_FRAMES - 4, sorted(scores)  # both kinds on the board
    out["split"] = _with_threshold(root / "untrained", root / "split", split)
    return out


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    import os

    old = os.environ.get("TINYSMILE_STATE_DIR")
    os.environ["TINYSMILE_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    yield
    if old is None:
        os.environ.pop("TINYSMILE_STATE_DIR", None)
    else:
        os.environ["TINYSMILE_STATE_DIR"] = old


def _twins(smile, finder, frame: np.ndarray):
    """The pipeline from the numpy twins and LiteRT's reference kernels, independently of
    the C: (face box or None, best score, square or None, smile input, smile output)."""
    from tinysmile.compiler.oracle import litert_reference
    from tinysmile.data.pixels import frame_square, framing_q16, resize_area
    from tinysmile.data.preprocess import PreprocessSpec, to_int8
    from tinysmile.finder.decode import decode, finder_tables

    fspec = PreprocessSpec.from_dict(finder.preprocess)
    fin = finder.meta["input"]
    small = resize_area(frame, fspec.width, fspec.height)
    x = to_int8(fspec, small, fin["scale"], fin["zero_point"]).reshape(1, *fin["shape"][1:])
    out = litert_reference(finder.model_path, x).reshape(-1)
    best = int(out.reshape(-1, 4)[:, 0].max())
    face = decode(finder_tables(finder.meta, FW, FH), out)
    if face is None:
        return None, best, None, None, None
    sspec = PreprocessSpec.from_dict(smile.preprocess)
    square = frame_square(face[:4], FW, FH, *framing_q16(sspec.crop_margin, sspec.crop_shift_y))
    sx, sy, side = square
    crop = resize_area(frame[sy : sy + side, sx : sx + side], sspec.width, sspec.height)
    sin = smile.meta["input"]
    xs = to_int8(sspec, crop, sin["scale"], sin["zero_point"]).reshape(1, *sin["shape"][1:])
    ys = litert_reference(smile.model_path, xs).reshape(-1)
    return tuple(face[:4]), face[4], square, xs.reshape(-1), ys


def test_host_bot_equals_the_twins_and_litert(finders):
    from tinysmile.device.app import smile_threshold
    from tinysmile.device.bot import FACE_FOUND, HostBot

    smile = load_bundle(None)
    out = smile.meta["output"]
    thr = smile_threshold(smile, float(out["scale"]), int(out["zero_point"]))
    frames = _frames(DEVICE_FRAMES, DEVICE_SEED)[:16]
    kinds = {}
    for t, finder in finders.items():
        bot = HostBot(smile, finder, FW, FH)
        found = []
        for frame in frames:
            got = bot.decide(frame)
            face, score, square, x, y = _twins(smile, finder, frame)
            assert got.face == face and got.score == score and got.square == square
            found.append(got.face is not None)
            if face is None:
                assert got.input_int8 is None and not got.smile
                continue
            assert got.face_kind == FACE_FOUND
            np.testing.assert_array_equal(got.input_int8, x)
            np.testing.assert_array_equal(got.output_int8, y)
            assert got.smile == (int(y[0]) >= thr)
        kinds[t] = found
    assert all(kinds["always"]) and not any(kinds["never"])  # forced face, forced no face
    # The boxes are not all the same cell (the decode's tables are exercised).
    bot = HostBot(smile, finders["always"], FW, FH)
    assert len({bot.decide(f).face for f in frames}) > 2


@pytest.mark.usefixtures("state")
def test_host_bot_without_a_finder_takes_the_centre_square():
    from tinysmile.data.pixels import resize_area
    from tinysmile.device.app import pixel_table
    from tinysmile.device.bot import FACE_GIVEN, HostBot

    smile = load_bundle(None)
    inp = smile.meta["input"]
    frame = np.random.default_rng(2).integers(0, 256, size=(FH, FW), dtype=np.uint8)
    got = HostBot(smile, None, FW, FH).decide(frame)
    assert got.face_kind == FACE_GIVEN and got.square == (40, 0, 240)
    lut = pixel_table(smile, float(inp["scale"]), int(inp["zero_point"]))
    want = lut[resize_area(frame[:, 40:280], inp["shape"][2], inp["shape"][1])]
    np.testing.assert_array_equal(got.input_int8, want.reshape(-1))


def test_camera_frame_conversion_letterboxes_with_the_area_resize():
    from tinysmile.data.pixels import resize_area
    from tinysmile.device.bot import to_camera_frame

    img = np.random.default_rng(4).integers(0, 256, size=(100, 200, 3), dtype=np.uint8)
    frame = to_camera_frame(img, FW, FH)
    assert frame.shape == (FH, FW) and frame.dtype == np.uint8
    from tinysmile.data.preprocess import to_gray

    # 200 x 100 fits as 320 x 160, centred: 40 black rows above and below.
    np.testing.assert_array_equal(frame[40:200], resize_area(to_gray(img), 320, 160))
    assert not frame[:40].any() and not frame[200:].any()
    same = np.arange(FW * FH, dtype=np.uint32).reshape(FH, FW).astype(np.uint8)
    np.testing.assert_array_equal(to_camera_frame(same, FW, FH), same)


@pytest.fixture(scope="module")
def bot_firmware(finders, tmp_path_factory):
    from tinysmile.device.pio import run_pio
    from tinysmile.device.project import generate_project

    project = generate_project(
        load_bundle(None),
        load_board(BOARD),
        tmp_path_factory.mktemp("botfw"),
        mode="app",
        finder=finders["split"],
    )
    run_pio(project)
    return project


@pytest.fixture
def bot_port(bot_firmware):
    from tinysmile.device import emulator

    st = emulator.start(load_board(BOARD), bot_firmware.elf, bot_firmware.tag, register=False)
    try:
        yield st
    finally:
        emulator.kill(st)


@pytest.mark.slow
@needs_emulator
def test_board_pipeline_equals_the_host_on_camera_frames(finders, bot_port):
    """DEVICE_FRAMES whole 320 x 240 frames over serial: box, finder score, square, the crop
    the model saw (CAPTURE's input), output and decision byte for byte; a frame without a
    face leaves the LED off, runs no inference and leaves CAPTURE's last decision alone."""
    import zlib

    from tinysmile.device.app import (
        FACE_FOUND,
        FACE_NONE,
        request_capture,
        send_camera_frame,
    )
    from tinysmile.device.bot import HostBot
    from tinysmile.device.session import client_for

    smile = load_bundle(None)
    board = load_board(BOARD)
    bot = HostBot(smile, finders["split"], FW, FH)
    n_in = int(np.prod(smile.meta["input"]["shape"]))
    frames = _frames(DEVICE_FRAMES, DEVICE_SEED)
    client = client_for(board, bot_port.port)
    seen = {FACE_NONE: 0, FACE_FOUND: 0}
    last_crc = None
    try:
        client.handshake()
        for i, frame in enumerate(frames):
            host = bot.decide(frame)
            r = send_camera_frame(client, frame, 1)
            seen[r.face] += 1
            assert r.score == host.score, i
            assert r.led == r.smile == int(host.smile), i
            cap = request_capture(client, n_in, 1) if last_crc or r.found else None
            if host.face is None:
                assert r.face == FACE_NONE and r.box == (0, 0, 0, 0) and r.led == 0, i
                if cap is not None:
                    assert cap.crc == last_crc, i  # CAPTURE still the last decision
                continue
            assert r.face == FACE_FOUND and r.box == host.face and r.square == host.square, i
            np.testing.assert_array_equal(r.output, host.output_int8)
            assert cap is not None and cap.crc == zlib.crc32(frame.tobytes()), i
            np.testing.assert_array_equal(cap.input, host.input_int8)
            np.testing.assert_array_equal(cap.output, host.output_int8)
            last_crc = cap.crc
    finally:
        client.close()
    assert seen[FACE_NONE] >= 4 and seen[FACE_FOUND] >= DEVICE_FRAMES // 2, seen


@pytest.mark.slow
@needs_emulator
def test_board_refuses_bad_frames_and_keeps_running(finders, bot_port):
    import struct
    import zlib

    from tinysmile.device.app import (
        ERR_BAD_FRAME,
        ERR_RANGE,
        MSG_FRAME,
        MSG_FRAME_DATA,
        send_camera_frame,
        send_frame_data,
    )
    from tinysmile.device.bot import HostBot
    from tinysmile.device.client import DeviceError
    from tinysmile.device.session import client_for

    smile = load_bundle(None)
    bot = HostBot(smile, finders["split"], FW, FH)
    frame = next(f for f in _frames(DEVICE_FRAMES, DEVICE_SEED) if bot.decide(f).face is not None)
    client = client_for(load_board(BOARD), bot_port.port)
    try:
        client.handshake()

        def refused(msg, payload):
            with pytest.raises(DeviceError) as exc:
                client.request(msg, payload)
            return exc.value.code

        assert refused(MSG_FRAME, bytes(100)) == 2  # neither a CRC nor a model-size frame
        assert refused(MSG_FRAME_DATA, struct.pack("<I", FW * FH - 10) + bytes(20)) == ERR_RANGE
        assert refused(MSG_FRAME_DATA, struct.pack("<I", 0xFFFFFFFF) + bytes(8)) == ERR_RANGE
        assert refused(MSG_FRAME_DATA, b"\x00\x00") == 2
        # Corrupt: every chunk sent, then one overwritten with other bytes; FRAME with the
        # real frame's CRC is refused, nothing decided.
        data = frame.tobytes()
        for off in range(0, len(data), 4096):
            send_frame_data(client, data[off : off + 4096], off)
        send_frame_data(client, bytes(b ^ 0x5A for b in data[5000:5100]), 5000)
        assert refused(MSG_FRAME, struct.pack("<I", zlib.crc32(data))) == ERR_BAD_FRAME
        # ... and the next whole frame is decided as the host decides it.
        r = send_camera_frame(client, frame, 1)
        host = bot.decide(frame)
        assert r.box == host.face and r.score == host.score
        np.testing.assert_array_equal(r.output, host.output_int8)
    finally:
        client.close()


@pytest.mark.slow
@needs_emulator
def test_emulator_killed_mid_frame_is_one_clear_error(bot_port):
    from tinysmile.device import emulator
    from tinysmile.device.app import send_camera_frame
    from tinysmile.device.session import client_for
    from tinysmile.errors import TinysmileError

    board = load_board(BOARD)
    client = client_for(board, bot_port.port)
    client.timeout, client.retries = 2.0, 1  # a dead port must not take a minute
    client.handshake()
    # Killed while the chunks are on their way (a frame takes seconds on the emulated UART).
    threading.Timer(0.5, emulator.kill, args=(bot_port,)).start()
    started = time.monotonic()
    try:
        with pytest.raises(TinysmileError) as exc:
            send_camera_frame(client, _frames(1, seed=9)[0], 1)
    finally:
        client.close()
    assert time.monotonic() - started < 30
    message = str(exc.value)
    assert message and "\n" not in message
