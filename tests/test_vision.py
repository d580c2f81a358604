"""firmware/vision: the integer area resize, the framing rule and the finder decode, in C
(through ctypes) and in their numpy twins, against independent computations and by hand.

The whole module runs a second time in a subprocess against the C built with ASan/UBSan
(`test_the_c_is_clean_under_the_sanitizers`), which catches any read outside a window.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from tinysmile.data import pixels
from tinysmile.data.pixels import frame_square, framing_q16, resize_area
from tinysmile.device import visionlib
from tinysmile.finder.decode import FinderTables, decode, finder_tables

REPO = Path(__file__).resolve().parents[1]
SANITIZE_ENV = "TSM_VISION_SANITIZE"
SANITIZE = os.environ.get(SANITIZE_ENV) == "1"


def c_resize_area(src: np.ndarray, dw: int, dh: int) -> np.ndarray:
    return visionlib.c_resize_area(src, dw, dh, sanitize=SANITIZE)


def c_frame_square(*args: int | tuple[int, ...]) -> tuple[int, int, int]:
    return visionlib.c_frame_square(*args, sanitize=SANITIZE)  # type: ignore[arg-type]


def c_finder_decode(tables: FinderTables, output: np.ndarray):
    return visionlib.c_finder_decode(tables, output, sanitize=SANITIZE)


def float_area_resize(src: np.ndarray, dw: int, dh: int) -> np.ndarray:
    """An independent reference: per output pixel, integrate the source over the rectangle
    it covers, with fractional coverage from float coordinates, then round half up."""
    sh, sw = src.shape
    fx, fy = sw / dw, sh / dh  # source pixels per output pixel
    out = np.empty((dh, dw), dtype=np.int64)
    for i in range(dh):
        y0, y1 = i * fy, (i + 1) * fy
        rows = np.arange(math.floor(y0), min(sh, math.ceil(y1)))
        cover_y = np.minimum(rows + 1, y1) - np.maximum(rows, y0)
        for j in range(dw):
            x0, x1 = j * fx, (j + 1) * fx
            cols = np.arange(math.floor(x0), min(sw, math.ceil(x1)))
            cover_x = np.minimum(cols + 1, x1) - np.maximum(cols, x0)
            block = src[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float64)
            mean = float(cover_y @ block @ cover_x) / (fx * fy)
            # The true mean is S / (sw * sh) for an integer S, so one that is not exactly
            # a half misses it by at least 1 / (2 * sw * sh) >= 1e-5 for these sizes; the
            # float error here is ~1e-12. 1e-9 makes exact halves round up as they should
            # and cannot move anything else.
            out[i, j] = math.floor(mean + 0.5 + 1e-9)
    return out.astype(np.uint8)


RESIZES = [
    ((320, 240), (80, 60)),  # a QVGA frame to the finder's input
    ((324, 244), (80, 60)),  # not a whole ratio: pixels split between outputs
    ((150, 150), (48, 48)),
    ((64, 64), (48, 48)),  # SMILEsmileD crop to the default model's input
    ((20, 20), (48, 48)),  # enlarging
    ((1, 1), (48, 48)),
    ((7, 3), (5, 11)),  # shrinking along x, enlarging along y
    # Whole blocks, the C's fast path (kx x ky sums): 4x2, 3x3, 1x5
    ((8, 6), (2, 3)),
    ((96, 72), (32, 24)),
    ((40, 50), (40, 10)),
]


@pytest.mark.parametrize(("src_size", "dst_size"), RESIZES)
def test_resize_c_twin_and_float_reference_agree(src_size, dst_size):
    (sw, sh), (dw, dh) = src_size, dst_size
    rng = np.random.default_rng(sw * 1000 + sh)
    src = rng.integers(0, 256, (sh, sw), dtype=np.uint8)
    twin = resize_area(src, dw, dh)
    assert twin.shape == (dh, dw) and twin.dtype == np.uint8
    assert_array_equal(twin, float_area_resize(src, dw, dh))
    assert_array_equal(c_resize_area(src, dw, dh), twin)


def test_resize_by_hand():
    # 2x2 -> 1: (1 + 2 + 3 + 4) / 4 = 2.5, a half, rounds up
    assert_array_equal(resize_area(np.array([[1, 2], [3, 4]], np.uint8), 1, 1), [[3]])
    # 3 -> 2 in one row: in the common scale a source pixel is 2 long and an output pixel
    # 3, so out0 = (2 * 0 + 1 * 30) / 3 = 10, out1 = (1 * 30 + 2 * 60) / 3 = 50
    row = np.array([[0, 30, 60]], np.uint8)
    assert_array_equal(resize_area(row, 2, 1), [[10, 50]])
    # 2 -> 3: out1 straddles both pixels equally: (10 + 21) / 2 = 15.5 -> 16
    assert_array_equal(resize_area(np.array([[10, 21]], np.uint8), 3, 1), [[10, 16, 21]])
    for src, expected in [
        (np.array([[1, 2], [3, 4]], np.uint8), [[3]]),
        (row, [[10, 50]]),
        (np.array([[10, 21]], np.uint8), [[10, 16, 21]]),
    ]:
        w = len(expected[0])
        assert_array_equal(c_resize_area(src, w, len(expected)), expected)


def test_resize_crops_inside_a_frame_use_the_stride():
    """Square windows of a 320x240 frame, at its corners, edges and inside, passed to the C
    as a pointer and the frame's row pitch (a numpy view, no copy)."""
    rng = np.random.default_rng(7)
    frame = rng.integers(0, 256, (240, 320), dtype=np.uint8)
    for side, out in [(64, 48), (150, 48), (20, 48), (1, 48), (240, 80)]:
        corners = [(0, 0), (0, 320 - side), (240 - side, 0), (240 - side, 320 - side)]
        edges = [(0, 100), (240 - side, 37), (11, 0), (5, 320 - side)]
        inside = [
            (int(rng.integers(0, 240 - side + 1)), int(rng.integers(0, 320 - side + 1)))
            for _ in range(4)
        ]
        for y, x in corners + edges + inside:
            window = frame[y : y + side, x : x + side]
            assert window.strides[0] == 320  # a view: the C steps over the frame's rows
            twin = resize_area(np.ascontiguousarray(window), out, out)
            where = f"{side}x{side} at ({x}, {y})"
            assert_array_equal(c_resize_area(window, out, out), twin, err_msg=where)
            assert_array_equal(twin, float_area_resize(window, out, out), err_msg=where)


def test_resize_at_the_largest_area_the_uint32_sums_hold():
    """255 * sw * sh just under 2^32: a white window must stay white. Adding area / 2 to
    the sum before dividing would wrap past 2^32 here."""
    sw, sh = 4099, 4109
    assert 255 * sw * sh < 2**32 < 255 * sw * sh + sw * sh // 2
    white = np.full((sh, sw), 255, dtype=np.uint8)
    assert_array_equal(c_resize_area(white, 1, 1), [[255]])
    assert_array_equal(resize_area(white, 1, 1), [[255]])
    rng = np.random.default_rng(11)
    noisy = rng.integers(200, 256, (sh, sw), dtype=np.uint8)
    assert_array_equal(c_resize_area(noisy, 3, 2), resize_area(noisy, 3, 2))


def test_resize_twin_int64_path_matches_its_float64_path(monkeypatch):
    # Beyond 2^53 the twin multiplies in int64; force that path on a small image.
    rng = np.random.default_rng(5)
    src = rng.integers(0, 256, (61, 83), dtype=np.uint8)
    fast = resize_area(src, 48, 35)
    monkeypatch.setattr(pixels, "EXACT_FLOAT64", 0)
    assert_array_equal(resize_area(src, 48, 35), fast)


def test_resize_refuses_what_the_c_cannot_take():
    from tinysmile.errors import TinysmileError

    src = np.zeros((4, 4), np.uint8)
    with pytest.raises(TinysmileError, match="cannot resize"):
        visionlib.c_resize_area(src, 257, 4)
    with pytest.raises(TinysmileError, match="cannot resize"):
        resize_area(src, 0, 4)
    with pytest.raises(TinysmileError, match="uint8"):
        resize_area(src.astype(np.int16), 2, 2)


def test_framing_q16():
    # SMILEsmileD's framing: 0.76 * 65536 = 49807.36, 0.152 * 65536 = 9961.472
    assert framing_q16(-0.12, 0.076) == (49807, 9961)
    assert framing_q16(0.25, -0.25) == (98304, -32768)


def test_frame_square_by_hand():
    # side = (100 * 49807 + 32768) >> 16 = 5013468 >> 16 = 76;
    # cx2 = 2 * 100 + 100 = 300, cy2 = 2 * 50 + 100 + floor((100 * 9961 + 32768) / 65536)
    # = 200 + 15 = 215; x = floor((300 - 76) / 2) = 112, y = floor((215 - 76) / 2) = 69
    framing = framing_q16(-0.12, 0.076)
    assert frame_square((100, 50, 100, 100), 640, 480, *framing) == (112, 69, 76)
    # Shift up by a quarter of h = 60: floor((60 * -32768 + 32768) / 65536) = floor(-29.5)
    # = -30 (C's truncating division would say -29); side = max(91, 60) with no margin;
    # cy2 = 200 + 60 - 30 = 230, y = floor((230 - 91) / 2) = 69; x = (291 - 91) / 2 = 100
    assert frame_square((100, 100, 91, 60), 320, 240, 65536, -32768) == (100, 69, 91)
    # A box larger than the frame: side = min(fw, fh) = 240; x = (20 + 500 - 240) // 2 =
    # 140 slides back to 320 - 240 = 80, y = 0 is the only place left
    margin = framing_q16(0.2, 0.0)
    assert frame_square((10, 10, 500, 500), 320, 240, *margin) == (80, 0, 240)
    # Partly outside at the top left, negative coordinates: side = 1.5 * 60 = 90; x =
    # floor((-10 - 90) / 2) = -50 and y = floor((-10 - 90) / 2) = -50 both clamp to 0
    assert frame_square((-30, -20, 50, 60), 320, 240, 98304, -32768) == (0, 0, 90)
    # Partly outside at the bottom right, shifted down: side = 1.5 * 40 = 60; x = floor((
    # 600 + 40 - 60) / 2) = 290 slides back to 260; cy2 = 440 + 40 + 20 = 500, y = 220 - 40
    assert frame_square((300, 220, 40, 40), 320, 240, 98304, 32768) == (260, 180, 60)
    for case in [
        ((100, 50, 100, 100), 640, 480, *framing),
        ((100, 100, 91, 60), 320, 240, 65536, -32768),
        ((10, 10, 500, 500), 320, 240, *margin),
        ((-30, -20, 50, 60), 320, 240, 98304, -32768),
        ((300, 220, 40, 40), 320, 240, 98304, 32768),
    ]:
        assert c_frame_square(*case) == frame_square(*case)


def test_frame_square_c_and_twin_agree_on_random_boxes():
    rng = np.random.default_rng(3)
    for _ in range(3000):
        fw, fh = (int(v) for v in rng.integers(1, 700, 2))
        box = tuple(int(v) for v in rng.integers(-200, 500, 2)) + tuple(
            int(v) for v in rng.integers(1, 600, 2)
        )
        side_q16, shift_q16 = framing_q16(rng.uniform(-0.45, 1.0), rng.uniform(-0.5, 0.5))
        twin = frame_square(box, fw, fh, side_q16, shift_q16)  # type: ignore[arg-type]
        assert c_frame_square(box, fw, fh, side_q16, shift_q16) == twin, (box, fw, fh)
        x, y, side = twin
        assert 1 <= side <= min(fw, fh) and 0 <= x <= fw - side and 0 <= y <= fh - side


def test_face_square_in_preprocess_is_the_integer_rule():
    from tinysmile.data.preprocess import PreprocessSpec, crop_to_input, framed_crop

    spec = PreprocessSpec(height=48, width=48, crop_margin=-0.12, crop_shift_y=0.076)
    rng = np.random.default_rng(9)
    frame = rng.integers(0, 256, (240, 320), dtype=np.uint8)
    for box in [(100, 50, 100, 100), (-20, 200, 90, 90), (250, 10, 64, 70)]:
        x, y, side = c_frame_square(box, 320, 240, *framing_q16(-0.12, 0.076))
        assert framed_crop(spec, box, 240, 320) == (x, y, side, side)
        # the training and serving crop is the board's bytes
        pre = crop_to_input(spec, frame, box)
        window = frame[y : y + side, x : x + side]
        assert_array_equal(pre.pixels[:, :, 0], c_resize_area(window, 48, 48))


# Tables for a 320x240 frame area-resized to 80x60, 8-pixel cells, output scale 1/16 and
# zero point -128 (v = (q + 128) / 16): a cell is 8 * 4 = 32 frame px, 512 in Q4.
META = {
    "output": {"scale": 0.0625, "zero_point": -128, "shape": [1, 2, 3, 4]},
    "preprocess": {"width": 80, "height": 60},
    "finder": {"stride": 8, "size_base": 16.0, "score_threshold_int8": 60},
}


def test_finder_tables_by_hand():
    t = finder_tables(META, 320, 240)
    assert (t.grid_w, t.grid_h, t.score_threshold, t.cell_w_q4, t.cell_h_q4) == (
        3,
        2,
        60,
        512,
        512,
    )
    for name in ("offset_x", "offset_y", "side"):
        arr = getattr(t, name)
        assert arr.dtype == np.int32 and arr.shape == (256,)
    # q = -128: v = 0, the cell's corner; a side of 16 px * 4 * 16 = 1024 (64 px)
    assert (t.offset_x[0], t.side[0]) == (0, 1024)
    # q = -120: v = 0.5, mid-cell (16 px = 256); side 16 * sqrt(2) * 64 = 1448.15 -> 1448
    assert (t.offset_x[8], t.offset_y[8], t.side[8]) == (256, 256, 1448)
    # q = -112: v = 1, the cell's far edge (512); a side of 2048 (128 px)
    assert (t.offset_x[16], t.side[16]) == (512, 2048)
    # q = 127: v = 15.9, offset clipped to 1 cell, log2 side clipped to 6: 16 * 64 * 64
    assert (t.offset_x[255], t.side[255]) == (512, 65536)
    # a 160x240 frame: 2 frame px per input px across, 4 down
    narrow = finder_tables(META, 160, 240)
    assert (narrow.cell_w_q4, narrow.cell_h_q4, narrow.offset_x[8], narrow.offset_y[8]) == (
        256,
        512,
        128,
        256,
    )


def _output(cells: dict[tuple[int, int], tuple[int, int, int, int]]) -> np.ndarray:
    out = np.full((1, 2, 3, 4), -128, dtype=np.int8)
    for (gy, gx), values in cells.items():
        out[0, gy, gx] = values
    return out


def _both(tables: FinderTables, output: np.ndarray):
    twin = decode(tables, output)
    assert c_finder_decode(tables, output) == twin
    return twin


def test_decode_by_hand():
    t = finder_tables(META, 320, 240)
    # One clear cell at row 1, column 2: centre x = 2 * 512 + 256 (mid-cell) = 1280 Q4 =
    # 80 px, y = 1 * 512 + 0 = 32 px, side 1024 Q4 = 64 px; x = floor((1280 - 512 + 8) /
    # 16) = 48, y = floor((512 - 512 + 8) / 16) = 0
    out = _output({(1, 2): (100, -120, -128, -128), (0, 0): (59, 0, 0, 0)})
    assert _both(t, out) == (48, 0, 64, 64, 100)
    # A face at the top-left border cell: centre (0, 16 px), side 2048 Q4 = 128 px;
    # x = floor((0 - 1024 + 8) / 16) = floor(-63.5) = -64 (truncation would say -63),
    # y = floor((256 - 1024 + 8) / 16) = floor(-47.5) = -48, side (2048 + 8) // 16 = 128
    out = _output({(0, 0): (60, -128, -120, -112)})
    assert _both(t, out) == (-64, -48, 128, 128, 60)
    # A tie: cells (0, 1) and (1, 0) both score 90; the first in row-major order wins
    # (centre x = 512 + 0 = 32 px, y = 0 + 256 = 16 px, side 64 px -> (0, -16))
    out = _output({(0, 1): (90, -128, -120, -128), (1, 0): (90, -112, -112, -112)})
    assert _both(t, out) == (0, -16, 64, 64, 90)
    # Below the threshold (60): no face
    assert _both(t, _output({(1, 1): (59, 0, 0, 0)})) is None
    assert _both(t, _output({})) is None


def test_decode_c_and_twin_agree_on_random_outputs():
    rng = np.random.default_rng(21)
    for trial in range(400):
        gw, gh = (int(v) for v in rng.integers(1, 13, 2))
        tables = FinderTables(
            grid_w=gw,
            grid_h=gh,
            score_threshold=int(rng.integers(-128, 129)),
            offset_x=rng.integers(-(2**20), 2**20, 256).astype(np.int32),
            offset_y=rng.integers(-(2**20), 2**20, 256).astype(np.int32),
            # some negative sides too: the halving and rounding must floor alike
            side=rng.integers(-(2**12), 2**20, 256).astype(np.int32),
            cell_w_q4=int(rng.integers(1, 2**12)),
            cell_h_q4=int(rng.integers(1, 2**12)),
        )
        # few distinct scores, so ties are common
        output = rng.integers(-128, 128, (1, gh, gw, 4)).astype(np.int8)
        output[..., 0] = rng.choice(np.array([-128, -5, 0, 3, 127], np.int8), (1, gh, gw))
        twin = decode(tables, output)
        assert c_finder_decode(tables, output) == twin, trial


def test_decode_from_a_finder_bundles_metadata():
    t = finder_tables(
        {
            "output": {"scale": 0.04, "zero_point": 3, "shape": [1, 8, 10, 4]},
            "preprocess": {"width": 80, "height": 60},
            "finder": {"stride": 8, "size_base": 16.0, "score_threshold_int8": 10},
        },
        640,
        480,
    )
    rng = np.random.default_rng(2)
    for _ in range(100):
        output = rng.integers(-128, 128, (1, 8, 10, 4)).astype(np.int8)
        assert c_finder_decode(t, output) == decode(t, output)


@pytest.mark.skipif(SANITIZE, reason="already the sanitized run")
def test_the_c_is_clean_under_the_sanitizers():
    """This module again, against the C built with ASan and UBSan: a read outside a window
    or an overflow fails the run."""
    env = dict(
        os.environ,
        LD_PRELOAD=visionlib.sanitizer_preload(),
        ASAN_OPTIONS="detect_leaks=0",
        UBSAN_OPTIONS="print_stacktrace=1",
        **{SANITIZE_ENV: "1"},
    )
    env.pop("PYTEST_XDIST_WORKER", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "0", "-q", "-p", "no:cacheprovider", __file__],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and "skipped" in proc.stdout
