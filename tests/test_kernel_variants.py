"""Specialised kernel variants: every one gives the bytes of the portable kernels and of
LiteRT's reference kernels; the shared requantization has one meaning in C and Python;
the planner's offset in-place never lets a live byte be overwritten."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from models import (
    build_depthwise_shapes,
    build_kernel_shapes,
    build_random_chain,
    build_smile_like,
)
from parity import random_inputs

from tinysmile.compiler.api import compile_model
from tinysmile.compiler.hostrun import CFLAGS, SANITIZE, build_host, host_compiler
from tinysmile.compiler.ops import conv2d as conv2d_op
from tinysmile.compiler.ops.base import window_lead
from tinysmile.compiler.oracle import litert_reference
from tinysmile.compiler.quant import requantize
from tinysmile.resources import firmware_dir


@pytest.mark.parametrize(
    "build",
    [build_kernel_shapes, build_depthwise_shapes, build_smile_like]
    + [functools.partial(build_random_chain, seed) for seed in range(1, 6)],
    ids=["kernel_shapes", "depthwise_shapes", "smile_like"]
    + [f"random_chain{seed}" for seed in range(1, 6)],
)
@pytest.mark.parametrize("conv", ["tiled16", "tiled"])
def test_variants_equal_portable_kernels_and_litert(
    build, conv, tmp_path, tmp_path_factory, monkeypatch
):
    """The host runs the variants' own arithmetic (tsm_dsp.h's C twins of SXTB16/SMLAD)
    under ASan/UBSan; the emulator test runs the DSP instructions. These models are small
    enough for int16 filters (tiled16); with the budget at 0 they get the int8 ones."""
    if conv == "tiled":
        monkeypatch.setattr(conv2d_op, "WIDE_FILTER_BYTES", 0)
    model, x, want = _portable_checked(build, tmp_path_factory)
    fast = compile_model(model, tmp_path / "fast")
    variants = {r["variant"] for r in fast.report["layers"]}
    other = {"tiled": "tiled16", "tiled16": "tiled"}[conv]
    assert conv in variants and other not in variants, variants
    got = build_host(fast, fast.c_path.parent).run(x)
    np.testing.assert_array_equal(got, want, err_msg=str(fast.c_path))


_PORTABLE: dict = {}


def _portable_checked(build, tmp_path_factory):
    """The model, 200 random inputs and LiteRT's outputs, once the portable (generic)
    kernels were seen to give those outputs too: once per model, whichever conv variant
    the test compiles (the portable build does not depend on it)."""
    key = (
        build.func.__name__ + str(build.args)
        if isinstance(build, functools.partial)
        else build.__name__
    )
    if key not in _PORTABLE:
        model = build()
        portable = compile_model(model, tmp_path_factory.mktemp("portable"), portable=True)
        assert {r["variant"] for r in portable.report["layers"]} == {"generic"}
        x = random_inputs(model, 200, seed=5)
        want = litert_reference(model, x).reshape(len(x), -1)
        assert len(np.unique(want)) > 1
        got = build_host(portable, portable.c_path.parent).run(x)
        np.testing.assert_array_equal(got, want, err_msg=str(portable.c_path))
        _PORTABLE[key] = (model, x, want)
    return _PORTABLE[key]


def test_kernel_shapes_model_has_the_listed_shapes():
    from tinysmile.compiler.program import build_program

    prog = build_program(build_kernel_shapes())
    g = prog.graph
    by_kind: dict[str, list] = {}
    for layer in prog.layers:
        by_kind.setdefault(layer.op.kind, []).append(layer)
    first = by_kind["CONV_2D"][0]
    assert g.tensor(first.op.inputs[0]).shape[3] == 1
    assert {(d.params["filter_h"], d.params["stride_h"]) for d in by_kind["DEPTHWISE_CONV_2D"]} == {
        (3, 1),
        (3, 2),
    }
    assert any(c.params["filter_h"] == 1 for c in by_kind["CONV_2D"])
    assert any(c.params["output_c"] % 2 for c in by_kind["CONV_2D"])
    assert {"ADD", "FULLY_CONNECTED", "MAX_POOL_2D"} <= set(by_kind)
    assert by_kind["MAX_POOL_2D"][0].params["variant"] == "x4"


def test_depthwise_shapes_model_has_the_listed_variants():
    from tinysmile.compiler.program import build_program

    layers = build_program(build_depthwise_shapes()).layers
    got = [
        (
            d.params["filter_h"],
            d.params["filter_w"],
            d.params["dilation_h"],
            d.params["input_c"],
            d.params["variant"],
        )
        for d in layers
        if d.op.kind == "DEPTHWISE_CONV_2D"
    ]
    assert got == [
        (10, 8, 1, 1, "tiled16"),  # one channel, multiplier 8: the tiled convolution
        (5, 5, 1, 8, "kxk"),
        (7, 1, 1, 8, "kxk"),
        (3, 3, 2, 8, "kxk"),  # dilated
        (1, 5, 1, 7, "kxk"),  # a group of 4 channels and 3 past it
        (2, 3, 1, 7, "kxk"),  # multiplier 2: every window expanded
    ]


REQUANT_HARNESS = r"""
#include <stdio.h>
#include "tsm_common.h"
int main(void)
{
    long x, m, s;
    while (scanf("%ld %ld %ld", &x, &m, &s) == 3) {
        printf("%ld %ld\n", (long)tsm_requantize((int32_t)x, (int32_t)m, (int32_t)s),
               (long)tsm_requantize_q31((int32_t)x, (int32_t)m, (int32_t)s));
    }
    return 0;
}
"""


def test_requantize_c_matches_python(tmp_path: Path):
    """tsm_requantize (rewritten with a shift for gemmlowp's truncating division) and the
    kernels' tsm_requantize_q31 both equal quant.requantize, the gemmlowp-literal twin,
    on edges (ties, INT32 limits, every shift) and random values."""
    rng = np.random.default_rng(3)
    n = 20000
    edges = np.array([0, 1, -1, 2**30, -(2**30), 2**31 - 1, -(2**31), 12345, -12345])
    x = np.concatenate([edges.repeat(8), rng.integers(-(2**31), 2**31, n)])
    x = np.concatenate([x, rng.integers(-(2**20), 2**20, n)])
    m = rng.integers(2**30, 2**31, x.size)
    m[::7] = 2**30
    m[1::7] = 2**31 - 1
    s = rng.integers(-31, 8, x.size)
    s[::5] = 0
    # positive shifts wrap x << s in C and in the twin alike (the reference does too)
    src = tmp_path / "rq.c"
    src.write_text(REQUANT_HARNESS)
    exe = tmp_path / "rq"
    subprocess.run(
        [
            host_compiler(),
            *CFLAGS,
            *SANITIZE,
            f"-I{firmware_dir() / 'kernels'}",
            str(src),
            "-o",
            str(exe),
        ],
        check=True,
    )
    lines = "".join(f"{a} {b} {c}\n" for a, b, c in zip(x, m, s))
    out = subprocess.run([str(exe)], input=lines, capture_output=True, text=True, check=True)
    got = np.array(out.stdout.split(), dtype=np.int64).reshape(-1, 2)
    want = requantize(x, m, s)
    np.testing.assert_array_equal(got[:, 0], want)
    np.testing.assert_array_equal(got[:, 1], want)


RS_HARNESS = r"""
#include <stdio.h>
#include "tsm_dsp.h"
int main(void)
{
    long x, m, a, e;
    while (scanf("%ld %ld %ld %ld", &x, &m, &a, &e) == 4) {
        printf("%ld\n", (long)tsm_requantize_rs((int32_t)x, (int32_t)m, (int32_t)a, (int32_t)e));
    }
    return 0;
}
"""


def test_requantize_rs_matches_python(tmp_path: Path):
    """tsm_requantize_rs (SMMULR of 2x, the output offset folded into the rounding) equals
    quant.requantize plus the offset over its whole domain: |x| < 2^30, right shifts
    1..22, every offset, ties at each shift included."""
    from tinysmile.compiler.ops.conv2d import rs_channel_params

    rng = np.random.default_rng(4)
    n = 20000
    e = rng.integers(1, 23, n)
    e[:22] = np.arange(1, 23)
    m = rng.integers(2**30, 2**31, n)
    m[::7] = 2**30
    m[1::7] = 2**31 - 1
    x = rng.integers(-(2**30) + 1, 2**30, n)
    x[::3] = rng.integers(-(2**16), 2**16, x[::3].size)
    x[:4] = [2**30 - 1, -(2**30) + 1, 0, -1]
    # ties of the second rounding: x * m / 2^31 landing on a half step of 2^e
    ties = (np.int64(1) << (e - 1)) * (2 * rng.integers(-50, 50, n) + 1)
    x[2::5] = ties[2::5] << 1  # with m = 2^30, x * m / 2^31 = x / 2
    m[2::5] = 2**30
    offset = rng.integers(-128, 128, n)
    rows = rs_channel_params(
        {"shift": -e, "mult": m, "output_offset": 0}, np.zeros(n, dtype=np.int64)
    )
    add = (np.int64(1) << (e - 1)) + offset * (np.int64(1) << e)
    assert rows is not None
    src = tmp_path / "rs.c"
    src.write_text(RS_HARNESS)
    exe = tmp_path / "rs"
    subprocess.run(
        [
            host_compiler(),
            *CFLAGS,
            *SANITIZE,
            f"-I{firmware_dir() / 'kernels'}",
            str(src),
            "-o",
            str(exe),
        ],
        check=True,
    )
    lines = "".join(f"{a} {b} {c} {d}\n" for a, b, c, d in zip(x, m, add, e))
    out = subprocess.run([str(exe)], input=lines, capture_output=True, text=True, check=True)
    got = np.array(out.stdout.split(), dtype=np.int64)
    np.testing.assert_array_equal(got, requantize(x, m, -e) + offset)


def _params(**kw):
    return {"batches": 1, "pad_h": 0, "pad_w": 0, **kw}


def _simulate_portable_conv(p, in_c, out_c, lead) -> bool:
    """Byte-level replay of the portable kernels' order (per pixel, per channel: read the
    clipped window, write one byte) with the output `lead` bytes before the input:
    True when no input byte is overwritten before its last read."""
    in_size = p["batches"] * p["input_h"] * p["input_w"] * in_c
    last_read = np.full(in_size, -1)
    t = 0
    events = []
    for b in range(p["batches"]):
        for oy in range(p["output_h"]):
            for ox in range(p["output_w"]):
                for oc in range(out_c):
                    for ky in range(p["filter_h"]):
                        iy = oy * p["stride_h"] - p["pad_h"] + ky
                        if not 0 <= iy < p["input_h"]:
                            continue
                        for kx in range(p["filter_w"]):
                            ix = ox * p["stride_w"] - p["pad_w"] + kx
                            if 0 <= ix < p["input_w"]:
                                j = ((b * p["input_h"] + iy) * p["input_w"] + ix) * in_c
                                last_read[j : j + in_c] = t
                    t += 1
                    k = ((b * p["output_h"] + oy) * p["output_w"] + ox) * out_c + oc
                    events.append((t, k))
                    t += 1
    for when, k in events:
        j = k - lead  # the input byte this output byte lands on
        if 0 <= j < in_size and last_read[j] > when:
            return False
    return True


@pytest.mark.parametrize(
    "shape",
    [
        # (in h, w, c, out c, filter, stride, pad): the smile net's first conv, a 3x3
        # SAME conv that grows the channels, a stride-2 pool, a 1x1 conv
        (16, 16, 1, 8, 5, 2, 1),
        (8, 8, 3, 6, 3, 1, 1),
        (8, 8, 4, 4, 2, 2, 0),
        (6, 6, 5, 7, 1, 1, 0),
    ],
)
def test_window_lead_is_safe_for_the_portable_order(shape):
    h, w, c, oc, f, s, pad = shape
    oh = (h + 2 * pad - f) // s + 1
    ow = (w + 2 * pad - f) // s + 1
    p = _params(
        input_h=h,
        input_w=w,
        output_h=oh,
        output_w=ow,
        filter_h=f,
        filter_w=f,
        stride_h=s,
        stride_w=s,
        pad_h=pad,
        pad_w=pad,
    )
    lead = window_lead(p, c, oc)
    assert _simulate_portable_conv(p, c, oc, lead)
    if oc > c:
        # the replay can fail: an output growing the channels cannot start on its input
        assert not _simulate_portable_conv(p, c, oc, 0)


# ---- seeded random shapes, built straight in the IR (no TensorFlow) ----------------------


def _quant(scale, zero_point, axis: int = 0):
    from tinysmile.compiler.ir import Quant

    scale = np.atleast_1d(np.asarray(scale, dtype=np.float32))
    zp = np.atleast_1d(np.asarray(zero_point, dtype=np.int64))
    if zp.size == 1 and scale.size > 1:
        zp = np.zeros(scale.size, dtype=np.int64)
    return Quant(scale, zp, axis)


def _window_graph(rng, kind: str):
    """One CONV_2D / DEPTHWISE_CONV_2D / MAX_POOL_2D / AVERAGE_POOL_2D with random shape, stride, padding,
    activation, zero points and per-channel scales (multipliers on both sides of 1/2, so
    both requantization paths run). DEPTHWISE_CONV_2D:kxk draws the kxk variant's shapes
    (filters 1-10 other than 3x3, non-square, strides 1-3, channels past a group of 4),
    DEPTHWISE_CONV_2D:1ch one input channel with multipliers 1-8 (the tiled convolution),
    DEPTHWISE_CONV_2D:dil the kxk shapes with dilations 1-3 (one above 1),
    DEPTHWISE_CONV_2D:mult several input channels with multipliers 2-4 (kxk), :mult8 with
    multipliers 5-8 (the expanded window's word stores),
    MAX_POOL_2D:odd and AVERAGE_POOL_2D:odd 5-43 channels, not a multiple of 4 (x4's last
    word overlapping the one before), :narrowN N = 1-3 channels (narrow)."""
    from tinysmile.compiler.ir import Graph, Op, Tensor

    kind, _, focus = kind.partition(":")
    h, w = int(rng.integers(3, 12)), int(rng.integers(3, 12))
    c = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 12]))
    if kind == "AVERAGE_POOL_2D" and rng.random() < 0.7:
        c = 4 * int(rng.integers(1, 4))  # the x4 variant's channel counts
    fh, fw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    if kind == "DEPTHWISE_CONV_2D" and rng.random() < 0.7:
        fh = fw = 3  # the specialised variant's shape
    fh, fw = min(fh, h), min(fw, w)
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    multiplier = None
    if focus == "odd" or focus.startswith("narrow"):
        # pools on channels past a group of 4 (the x4 variants' overlapping last word), or
        # on 1-3 (narrowN: N channels, the narrow variants)
        c = int(rng.choice([5, 6, 7, 9, 11, 13, 43])) if focus == "odd" else int(focus[6:])
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        if rng.random() < 0.5:
            fh = fw = sh = sw = int(rng.choice([2, 3]))  # what Keras's pools build
    elif focus:
        # drawn after the others, so that the plain cases keep their shapes
        fh, fw = [int(v) for v in rng.choice([1, 2, 4, 5, 7, 8, 10], 2)]
        if rng.random() < 0.5:
            (fh, fw) = (fh, 1) if rng.random() < 0.5 else (1, fw)  # 1-D: Nx1 or 1xN
        h, w = int(rng.integers(max(3, fh - 2), fh + 9)), int(rng.integers(max(3, fw - 2), fw + 9))
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        if focus == "1ch":
            c, multiplier = 1, int(rng.integers(1, 9))
        else:
            c, multiplier = int(rng.choice([2, 3, 5, 6, 7, 8, 12, 16])), 1
    if focus == "mult":
        c, multiplier = int(rng.choice([2, 3, 4, 5, 8])), int(rng.integers(2, 5))
        if rng.random() < 0.3:
            fh = fw = 3
    elif focus == "mult8":
        # multipliers 5-8: the expanded window's word stores, the last overlapping
        c, multiplier = int(rng.choice([2, 3, 5])), int(rng.integers(5, 9))
    dh = dw = 1
    if focus == "dil":
        c = int(rng.choice([1, 4, 5, 8]))
        while (dh, dw) == (1, 1):
            dh, dw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    padding = str(rng.choice(["SAME", "VALID"]))
    if focus and focus != "odd" and not focus.startswith("narrow") and padding == "VALID":
        # SAME may take a window wider than the input
        h, w = max(h, (fh - 1) * dh + 1), max(w, (fw - 1) * dw + 1)
    act = str(rng.choice(["NONE", "RELU", "RELU6"]))
    s_in, zp_in = float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128))
    s_out, zp_out = float(rng.uniform(0.01, 0.2)), int(rng.integers(-100, 100))
    x = Tensor(0, "x", (1, h, w, c), np.dtype(np.int8), _quant(s_in, zp_in))
    tensors = [x]
    if kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        y_quant = _quant(s_in, zp_in)
        options = {"filter_height": fh, "filter_width": fw}
        inputs = [0]
    else:
        if kind == "DEPTHWISE_CONV_2D" and multiplier is not None:
            oc = c * multiplier
            rng.random()  # the draw the plain cases make here
        elif kind == "DEPTHWISE_CONV_2D":
            oc = c * (1 if rng.random() < 0.7 else 2)  # depth multiplier 1 is the common one
        else:
            oc = int(rng.integers(1, 10))
        if kind == "DEPTHWISE_CONV_2D":
            wshape, axis = (1, fh, fw, oc), 3
        else:
            wshape, axis = (oc, fh, fw, c), 0
        # weight scales over 3.5 decades: real multipliers from ~1e-4 to ~30, so right
        # shifts, no shift and left shifts all occur
        s_w = (rng.uniform(0.002, 0.05, oc) * 10 ** rng.uniform(-1, 2.5, oc)).astype(np.float32)
        weights = rng.integers(-127, 128, wshape).astype(np.int8)
        bias = rng.integers(-3000, 3000, oc).astype(np.int32)
        tensors.append(Tensor(1, "w", wshape, np.dtype(np.int8), _quant(s_w, 0, axis), weights))
        b_scale = (np.float32(s_in) * s_w).astype(np.float32)
        tensors.append(Tensor(2, "b", (oc,), np.dtype(np.int32), _quant(b_scale, 0), bias))
        y_quant = _quant(s_out, zp_out)
        options = {"activation": act}
        inputs = [0, 1, 2]
        c = oc
    from tinysmile.compiler.ops.base import compute_padding

    oh, _ = compute_padding(padding, h, fh, sh, dh)
    ow, _ = compute_padding(padding, w, fw, sw, dw)
    idx = len(tensors)
    tensors.append(Tensor(idx, "y", (1, oh, ow, c), np.dtype(np.int8), y_quant))
    options.update({"stride_h": sh, "stride_w": sw, "padding": padding})
    if (dh, dw) != (1, 1):
        options.update({"dilation_h_factor": dh, "dilation_w_factor": dw})
    from tinysmile.compiler.ops import lookup

    op = Op(0, kind, inputs, [idx], options, options_type=lookup(kind).options)
    return Graph(f"random_{kind.lower()}", "0" * 64, tensors, [op], [0], [idx])


RANDOM_CASES = (
    [("CONV_2D", s) for s in range(8)]
    + [("DEPTHWISE_CONV_2D", s) for s in range(10)]  # 6 and 9: groups with a left shift
    + [("MAX_POOL_2D", s) for s in range(3)]
    + [("AVERAGE_POOL_2D", s) for s in range(5)]
    + [("DEPTHWISE_CONV_2D:1ch", s) for s in range(5)]
    + [("DEPTHWISE_CONV_2D:kxk", s) for s in range(8)]
    + [("DEPTHWISE_CONV_2D:dil", s) for s in range(5)]
    + [("DEPTHWISE_CONV_2D:mult", s) for s in range(5)]
    + [("DEPTHWISE_CONV_2D:mult8", s) for s in range(4)]
    + [("MAX_POOL_2D:odd", s) for s in range(6)]
    + [("AVERAGE_POOL_2D:odd", s) for s in range(6)]
    + [(f"{k}_POOL_2D:narrow{c}", s) for k in ("MAX", "AVERAGE") for c in (1, 2, 3) for s in (0, 1)]
)
# the variant each focused case is drawn for
FOCUS_VARIANTS = {
    "kxk": {"kxk"},
    "1ch": {"tiled", "tiled16"},
    "dil": {"kxk"},
    "mult": {"kxk"},
    "mult8": {"kxk"},
    "odd": {"x4"},
    **{f"narrow{c}": {"narrow"} for c in (1, 2, 3)},
}


@pytest.mark.parametrize("kind,seed", RANDOM_CASES)
def test_random_shapes_variant_equals_twin(kind, seed, tmp_path, monkeypatch):
    """Seeded random shapes (odd channel counts, strides 1-3, SAME/VALID, fused
    activations, zero points, per-channel scales): the generated C with its specialised
    variant gives the bytes of the numpy twin (itself held to LiteRT by the op tests).
    Odd seeds of CONV_2D and of one-channel depthwise layers take the int8 filters (tiled),
    even ones int16 (tiled16)."""
    from tinysmile.compiler.reference import reference_invoke

    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D:1ch") and seed % 2:
        monkeypatch.setattr(conv2d_op, "WIDE_FILTER_BYTES", 0)

    rng = np.random.default_rng(1000 * RANDOM_CASES.index((kind, seed)) + seed)
    graph = _window_graph(rng, kind)
    compiled = compile_model(graph, tmp_path)
    focus = kind.partition(":")[2]
    if focus:
        assert compiled.report["layers"][0]["variant"] in FOCUS_VARIANTS[focus]
    x = rng.integers(-128, 128, (40, *graph.input.shape), dtype=np.int8)
    want = reference_invoke(compiled.program, x).reshape(len(x), -1)
    got = build_host(compiled, tmp_path).run(x)
    np.testing.assert_array_equal(got, want, err_msg=str(compiled.report["layers"][0]))


@pytest.mark.parametrize("opt", ["-O0", "-O1", "-Og", "-Os", "-O2", "-O3"])
def test_kernels_build_for_cortex_m4_at_every_optimization_level(opt, tmp_path):
    """The written-out DSP loops hold a dozen values in registers: a board's framework or a
    debug build may compile the kernels at any -O level, and gcc must neither refuse the
    constraints nor run on (at -O0 the kernels take their C twins, TSM_ASM)."""
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.skip("needs arm-none-eabi-gcc (scripts/setup.sh installs it)")
    kernels = firmware_dir() / "kernels"
    for src in sorted(kernels.glob("*.c")):
        subprocess.run(
            [
                gcc,
                opt,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-mcpu=cortex-m4",
                "-mthumb",
                "-mfloat-abi=hard",
                "-mfpu=fpv4-sp-d16",
                f"-I{kernels}",
                "-c",
                str(src),
                "-o",
                str(tmp_path / f"{src.stem}.o"),
            ],
            check=True,
            timeout=120,
        )


def _corpus_model(name: str) -> bytes:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import corpus

    return corpus.MODELS[name]()


@pytest.mark.parametrize("name", ["corpus_r1", "corpus_r3", "corpus_r9"])
def test_corpus_models_equal_litert(name, tmp_path):
    """Speed corpus models whose layers take the fast paths on odd shapes, whole, against
    LiteRT under ASan/UBSan: pools on channels past a group of 4 (corpus_r1: 2x2 average
    on 46, in place; corpus_r3: 2x2 then 3x3 max on 43, the first in place, overlapping its
    input by window_lead); depthwise kxk with a multiplier (corpus_r9: 5x4 times 2 on 17)
    and border windows on channels past a group of 4 (corpus_r1: a dilated 10x10 on 46;
    corpus_r9: 9x4 on 34); FULLY_CONNECTED x4 with a block of two (corpus_r1's 10-unit
    head)."""
    model = _corpus_model(name)
    compiled = compile_model(model, tmp_path)
    plan = compiled.program.plan
    in_place = 0
    for layer in compiled.program.layers:
        if layer.op.kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            assert layer.params["variant"] == "x4", layer.params
            (i,), (o,) = layer.op.inputs, layer.op.outputs
            (si, ai), (so, ao) = plan.storage(i), plan.storage(o)
            size = compiled.program.graph.tensor(o).nbytes
            in_place += si == so == "arena" and ao <= ai < ao + size  # lead bytes apart
        if layer.op.kind == "DEPTHWISE_CONV_2D":
            assert layer.params["variant"] == "kxk", layer.params
    assert in_place >= (name in ("corpus_r1", "corpus_r3"))
    x = random_inputs(model, 24, seed=7)
    want = litert_reference(model, x).reshape(len(x), -1)
    got = build_host(compiled, tmp_path).run(x)
    np.testing.assert_array_equal(got, want)


def _dense_graph(rng, out_depth: int, batches: int):
    """One FULLY_CONNECTED: random depth (past a multiple of 4 or not), per-channel or
    per-tensor weight scales, zero points, a fused activation."""
    from tinysmile.compiler.ir import Graph, Op, Tensor
    from tinysmile.compiler.ops import lookup

    depth = int(rng.integers(1, 41))
    per_channel = bool(rng.random() < 0.5)
    s_in, zp_in = float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128))
    s_out, zp_out = float(rng.uniform(0.01, 0.2)), int(rng.integers(-100, 100))
    n_scales = out_depth if per_channel else 1
    s_w = (rng.uniform(0.002, 0.05, n_scales) * 10 ** rng.uniform(-1, 1.5, n_scales)).astype(
        np.float32
    )
    weights = rng.integers(-127, 128, (out_depth, depth)).astype(np.int8)
    bias = rng.integers(-3000, 3000, out_depth).astype(np.int32)
    b_scale = (np.float32(s_in) * s_w).astype(np.float32)
    tensors = [
        Tensor(0, "x", (batches, depth), np.dtype(np.int8), _quant(s_in, zp_in)),
        Tensor(1, "w", (out_depth, depth), np.dtype(np.int8), _quant(s_w, 0), weights),
        Tensor(2, "b", (out_depth,), np.dtype(np.int32), _quant(b_scale, 0), bias),
        Tensor(3, "y", (batches, out_depth), np.dtype(np.int8), _quant(s_out, zp_out)),
    ]
    options = {"activation": str(rng.choice(["NONE", "RELU", "RELU6"]))}
    kind = "FULLY_CONNECTED"
    op = Op(0, kind, [0, 1, 2], [3], options, options_type=lookup(kind).options)
    return Graph("random_dense", "0" * 64, tensors, [op], [0], [3])


# output units: blocks of four, a block of two (2, 3, 6, 7, 10, 11 left), a last unit
@pytest.mark.parametrize("out_depth,batches", [(2, 1), (3, 2), (6, 1), (7, 1), (10, 1), (9, 3)])
def test_random_dense_x4_equals_twin(out_depth, batches, tmp_path):
    """FULLY_CONNECTED x4 on every way the units split into blocks of four, two and one,
    depths on and past a multiple of 4, batches above 1: the numpy twin's bytes."""
    from tinysmile.compiler.reference import reference_invoke

    rng = np.random.default_rng([29, out_depth, batches])
    graph = _dense_graph(rng, out_depth, batches)
    compiled = compile_model(graph, tmp_path)
    assert compiled.report["layers"][0]["variant"] == "x4"
    x = rng.integers(-128, 128, (40, *graph.input.shape), dtype=np.int8)
    want = reference_invoke(compiled.program, x).reshape(len(x), -1)
    got = build_host(compiled, tmp_path).run(x)
    np.testing.assert_array_equal(got, want, err_msg=str(compiled.report["layers"][0]))
