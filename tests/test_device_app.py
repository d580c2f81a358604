"""The smiling-bot app's logic on the emulated board: SMILEsmileD frames sent over serial,
the LED state reported back, against the host's decision (LiteRT reference kernels on the
same pixels, through the bundle's own preprocessing)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tinysmile.boards import load_board
from tinysmile.bundle import load_bundle

BOARD = "qemu-cortex-m4"
SMILES = Path("/work/shared/datasets/smilesmiled/SMILEs")
# Candidates per class, in file order; the test takes the first the bundled model gets
# right by at least MARGIN int8 steps, so a retrained model still finds clear examples.
CANDIDATES = 16
MARGIN = 24

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")),
        reason="needs qemu-system-arm and arm-none-eabi-gcc (scripts/setup.sh installs them)",
    ),
    pytest.mark.skipif(not SMILES.is_dir(), reason=f"needs the SMILEsmileD images in {SMILES}"),
]


def _host(bundle, files):
    from tinysmile.compiler.oracle import litert_reference
    from tinysmile.data.preprocess import PreprocessSpec, load_image, preprocess, to_int8

    spec = PreprocessSpec.from_dict(bundle.preprocess)
    inp = bundle.meta["input"]
    h, w = spec.height, spec.width
    pixels = [preprocess(spec, load_image(f)).reshape(h, w) for f in files]
    x = np.stack([to_int8(spec, p, inp["scale"], inp["zero_point"]) for p in pixels])
    y = litert_reference(bundle.model_path, x.reshape(len(files), h, w, 1)).reshape(-1)
    return pixels, y


def _pick(bundle, folder: str, smiling: bool):
    thr = int(bundle.meta["threshold_int8"])
    files = sorted((SMILES / folder).glob("*.jpg"))[:CANDIDATES]
    pixels, y = _host(bundle, files)
    for f, p, v in zip(files, pixels, y, strict=True):
        if (v >= thr + MARGIN) if smiling else (v < thr - MARGIN):
            return f, p, int(v)
    pytest.fail(f"no image in the first {CANDIDATES} of {folder} is clearly classified")


@pytest.fixture(scope="module")
def app_port(tmp_path_factory):
    from tinysmile.device import emulator
    from tinysmile.device.pio import run_pio
    from tinysmile.device.project import generate_project

    board = load_board(BOARD)
    bundle = load_bundle(None)
    project = generate_project(bundle, board, tmp_path_factory.mktemp("app"), mode="app")
    run_pio(project)
    st = emulator.start(board, project.elf, bundle.model_hash(), register=False, icount=False)
    try:
        yield st.port
    finally:
        emulator.kill(st)


def test_app_decides_like_the_host_on_smilesmiled(app_port):
    from tinysmile.device.app import send_frame
    from tinysmile.device.session import client_for

    bundle = load_bundle(None)
    thr = int(bundle.meta["threshold_int8"])
    smile = _pick(bundle, "positives/positives7", smiling=True)
    frown = _pick(bundle, "negatives/negatives7", smiling=False)
    client = client_for(load_board(BOARD), app_port)
    try:
        for (path, pixels, host_out), want in ((smile, 1), (frown, 0)):
            reply = send_frame(client, pixels, 1)
            assert int(reply.output[0]) == host_out, path  # the same int8 score, exactly
            assert reply.smile == int(host_out >= thr) == want, path
            assert reply.led == want, path  # the LED follows the decision
        # The LED goes back off (and on) frame by frame, not only once.
        assert send_frame(client, smile[1], 1).led == 1
        assert send_frame(client, frown[1], 1).led == 0
    finally:
        client.close()


def test_app_refuses_a_frame_of_the_wrong_size(app_port):
    from tinysmile.device.app import MSG_FRAME
    from tinysmile.device.client import DeviceError
    from tinysmile.device.session import client_for

    client = client_for(load_board(BOARD), app_port)
    try:
        with pytest.raises(DeviceError, match="bad length"):
            client.request(MSG_FRAME, bytes(100))
    finally:
        client.close()


def test_app_pixel_table_is_the_bundles_preprocessing():
    from tinysmile.data.preprocess import PreprocessSpec, to_int8
    from tinysmile.device.app import app_tables

    bundle = load_bundle(None)
    report = {
        "input": {
            "shape": [1, 64, 64, 1],
            **{k: bundle.meta["input"][k] for k in ("scale", "zero_point")},
        },
        "output": {"shape": [1, 1], "scale": 1 / 256, "zero_point": -128},
    }
    t = app_tables(bundle, report, load_board(BOARD))
    spec = PreprocessSpec.from_dict(bundle.preprocess)
    levels = np.arange(256, dtype=np.uint8)
    want = to_int8(spec, levels, report["input"]["scale"], report["input"]["zero_point"])
    np.testing.assert_array_equal(np.array(t.pixel_to_input, dtype=np.int8), want)
    assert t.smile_threshold == int(bundle.meta["threshold_int8"])
    # The emulated board's camera frame (no capture driver: frames come over serial).
    assert (t.camera_width, t.camera_height) == (320, 240)
    assert app_tables(bundle, report, None).camera_width == 0  # no camera frame at all


def test_frame_command_builds_boots_and_compares(tmp_path, monkeypatch, capsys):
    """`tinysmile frame` turns each image into a camera frame (grayscale, letterboxed to
    320 x 240), sends it whole and compares with the host's same C. No finder is shipped
    with this tinysmile yet, so the default is the centre square."""
    import json

    from tinysmile.cli import main

    monkeypatch.setenv("TINYSMILE_STATE_DIR", str(tmp_path))
    bundle = load_bundle(None)
    smile = _pick(bundle, "positives/positives7", smiling=True)
    frown = _pick(bundle, "negatives/negatives7", smiling=False)
    assert main(["frame", str(smile[0]), str(frown[0]), "--json", "--detector", "none"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["ok"]
    for r in res["frames"]:
        # A 64 x 64 crop letterboxed to 240 x 240 in the middle: the centre square is it.
        assert r["device_face"] == r["host_face"] == [40, 0, 240, 240]
        assert r["device_score"] == r["host_score"] is not None
        assert r["led"] == r["device_smile"] == r["host_smile"]
    # Upscaled to 240 and back to 48 the crops keep their clear decisions.
    assert [r["led"] for r in res["frames"]] == [1, 0]
    # The emulator it booted for the occasion is gone again.
    from tinysmile.device import emulator

    assert emulator.read_state(BOARD) is None


def test_app_camera_path_crops_resamples_and_maps_exactly(tmp_path):
    """The camera path without a finder in C (tsm_bot.c, built for the host under
    ASan/UBSan) against numpy: the centred square of a 324 x 244 frame, area-resized
    (tinysmile.data.pixels.resize_area), through the pixel table."""
    import dataclasses
    import subprocess

    from device_helpers import build_host

    from tinysmile.device.app import app_tables, render_app_glue
    from tinysmile.resources import firmware_dir

    fixtures = Path(__file__).resolve().parent / "fixtures" / "app_host"
    bundle = load_bundle(None)
    base = load_board(BOARD)
    board = dataclasses.replace(
        base, data={**base.data, "camera": {"driver": "test", "width": 324, "height": 244}}
    )
    report = {
        "model": "fake",
        "input": {"shape": [1, 64, 64, 1], "scale": 1 / 255, "zero_point": -128},
        "output": {"shape": [1, 1], "scale": 1 / 256, "zero_point": -128},
    }
    glue = tmp_path / "glue.c"
    render_app_glue(glue, bundle, report, board, "fake_model.h", "fake_info", "fake_invoke")
    fw = firmware_dir()
    exe = build_host(
        tmp_path / "app_host",
        [
            fixtures / "app_host_main.c",
            glue,
            fw / "app" / "tsm_bot.c",
            *sorted((fw / "vision").glob("*.c")),
        ],
        extra=[f"-I{fixtures}", f"-I{fw / 'app'}", f"-I{fw / 'vision'}"],
    )
    frame = np.random.default_rng(5).integers(0, 256, size=(244, 324), dtype=np.uint8)
    out = subprocess.run(
        [str(exe)], input=frame.tobytes(), capture_output=True, timeout=60, check=True
    ).stdout
    t = app_tables(bundle, report, board)
    lut = np.array(t.pixel_to_input, dtype=np.int8)
    from tinysmile.data.pixels import resize_area

    want = lut[resize_area(frame[:, 40 : 40 + 244], 64, 64)]
    got = np.frombuffer(out[: 64 * 64], dtype=np.int8).reshape(64, 64)
    np.testing.assert_array_equal(got, want)
    assert out[64 * 64] == int(int(want[0, 0]) >= t.smile_threshold)
