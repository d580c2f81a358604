"""The fixed-point twins (tinysmile/compiler/fixedpoint.py and tsm_fixedpoint.h) agree with
each other, and the Python one with gemmlowp itself (the header TensorFlow ships)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinysmile.compiler.fixedpoint import (
    exp_on_negative_values,
    get_reciprocal,
    one_over_one_plus_x_for_x_in_0_1,
)
from tinysmile.compiler.hostrun import CFLAGS, SANITIZE, host_compiler
from tinysmile.resources import firmware_dir

EDGE_Q0 = [0, 1, 2, 3, (1 << 30) - 1, 1 << 30, (1 << 31) - 2, (1 << 31) - 1]


def _samples(n: int = 20000) -> np.ndarray:
    rng = np.random.default_rng(11)
    return np.concatenate([np.array(EDGE_Q0), rng.integers(0, 2**31, n)]).astype(np.int64)


def _run(exe: Path, lines: list[str]) -> np.ndarray:
    proc = subprocess.run(
        [str(exe)], input="".join(lines), capture_output=True, text=True, check=True
    )
    return np.array(proc.stdout.split(), dtype=np.int64)


C_HARNESS = r"""
#include <stdio.h>
#include "tsm_fixedpoint.h"
/* "r x": 1/(1+x) in Q0; "g x": get_reciprocal(x, 12) and its bits over unit */
int main(void)
{
    char kind;
    long long v;
    while (scanf(" %c %lld", &kind, &v) == 2) {
        if (kind == 'r') {
            printf("%ld\n", (long)tsm_one_over_one_plus_x((int32_t)v));
        } else {
            int32_t bits;
            int32_t r = tsm_get_reciprocal((int32_t)v, 12, &bits);
            printf("%ld %ld\n", (long)r, (long)bits);
        }
    }
    return 0;
}
"""


def test_c_twin_matches_python(tmp_path: Path) -> None:
    src = tmp_path / "fp.c"
    src.write_text(C_HARNESS)
    exe = tmp_path / "fp"
    kernels = firmware_dir() / "kernels"
    subprocess.run(
        [host_compiler(), *CFLAGS, *SANITIZE, f"-I{kernels}", str(src), "-o", str(exe)],
        check=True,
    )
    x = _samples()
    got = _run(exe, [f"r {v}\n" for v in x])
    np.testing.assert_array_equal(got, one_over_one_plus_x_for_x_in_0_1(x))
    # sums of exps as SOFTMAX forms them: Q12, from 2^19 (one exp of 1) up to 2^28
    sums = np.random.default_rng(12).integers(1 << 19, 1 << 28, 20000)
    got = _run(exe, [f"g {v}\n" for v in sums]).reshape(-1, 2)
    reciprocal, bits = get_reciprocal(sums, 12)
    np.testing.assert_array_equal(got[:, 0], reciprocal)
    np.testing.assert_array_equal(got[:, 1], bits)


GEMMLOWP_ORACLE = r"""
#include <cstdio>
#include <cstdint>
#include "fixedpoint/fixedpoint.h"
int main() {
  char kind;
  long long v;
  while (std::scanf(" %c %lld", &kind, &v) == 2) {
    const int32_t raw = static_cast<int32_t>(v);
    if (kind == 'e') {
      std::printf("%d\n", gemmlowp::exp_on_negative_values(
                              gemmlowp::FixedPoint<int32_t, 5>::FromRaw(raw)).raw());
    } else {
      std::printf("%d\n", gemmlowp::one_over_one_plus_x_for_x_in_0_1(
                              gemmlowp::FixedPoint<int32_t, 0>::FromRaw(raw)).raw());
    }
  }
  return 0;
}
"""


def _gemmlowp_include() -> Path | None:
    # the training extra (tensorflow) ships gemmlowp's headers; find them without importing
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or spec.origin is None:
        return None
    inc = Path(spec.origin).parent / "include" / "external" / "gemmlowp"
    return inc if (inc / "fixedpoint" / "fixedpoint.h").exists() else None


def test_python_twin_matches_gemmlowp(tmp_path: Path) -> None:
    inc = _gemmlowp_include()
    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if inc is None or cxx is None:
        pytest.skip("gemmlowp headers (tensorflow) or a C++ compiler not available")
    src = tmp_path / "oracle.cc"
    src.write_text(GEMMLOWP_ORACLE)
    exe = tmp_path / "oracle"
    subprocess.run([cxx, "-O1", "-std=c++14", f"-I{inc}", str(src), "-o", str(exe)], check=True)
    # exp's input: SOFTMAX's scaled differences, Q5.26, from 0 down to -32
    rng = np.random.default_rng(13)
    a = np.concatenate(
        [np.array([0, -1, -2, -(1 << 24), -(1 << 26), -(2**31)]), -rng.integers(0, 2**31, 5000)]
    )
    got = _run(exe, [f"e {v}\n" for v in a])
    np.testing.assert_array_equal(got, [exp_on_negative_values(int(v), 5) for v in a])
    x = _samples(5000)
    got = _run(exe, [f"r {v}\n" for v in x])
    np.testing.assert_array_equal(got, one_over_one_plus_x_for_x_in_0_1(x))
