"""Specialised kernel variants: every one gives the bytes of the portable kernels and of
LiteRT's reference kernels; the shared requantization has one meaning in C and Python;
the planner's offset in-place never lets a live byte be overwritten."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from models import build_kernel_shapes, build_smile_like
from parity import random_inputs

from tinysmile.compiler.api import compile_model
from tinysmile.compiler.hostrun import CFLAGS, SANITIZE, build_host, host_compiler
from tinysmile.compiler.ops.base import window_lead
from tinysmile.compiler.oracle import litert_reference
from tinysmile.compiler.quant import requantize
from tinysmile.resources import firmware_dir


@pytest.mark.parametrize("build", [build_kernel_shapes, build_smile_like])
def test_variants_equal_portable_kernels_and_litert(build, tmp_path):
    """The host runs the variants' own arithmetic (tsm_dsp.h's C twins of SXTB16/SMLAD)
    under ASan/UBSan; the emulator test runs the DSP instructions."""
    model = build()
    fast = compile_model(model, tmp_path / "fast")
    portable = compile_model(model, tmp_path / "portable", portable=True)
    variants = {r["variant"] for r in fast.report["layers"]}
    assert "tiled" in variants, variants
    assert {r["variant"] for r in portable.report["layers"]} == {"generic"}
    x = random_inputs(model, 200, seed=5)
    want = litert_reference(model, x).reshape(len(x), -1)
    assert len(np.unique(want)) > 1
    for compiled in (fast, portable):
        got = build_host(compiled, compiled.c_path.parent).run(x)
        np.testing.assert_array_equal(got, want, err_msg=str(compiled.c_path))


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
