"""Parity checks shared by the compiler tests: generated C (built with sanitizers), the
ops' numpy twins and LiteRT's reference kernels must give the same int8 bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinysmile.compiler.hostrun import compile_and_build
from tinysmile.compiler.oracle import litert_reference
from tinysmile.compiler.reference import reference_invoke


def random_inputs(model: bytes, n: int, seed: int = 0) -> np.ndarray:
    from tinysmile.compiler.program import build_program

    shape = build_program(model).graph.input.shape
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, size=(n, *shape), dtype=np.int8)


def assert_parity(model: bytes, workdir: Path, n: int = 200, seed: int = 0) -> dict:
    """Compile, run n random inputs three ways, require identical bytes; returns the report."""
    binary = compile_and_build(model, workdir)
    x = random_inputs(model, n, seed)
    expected = litert_reference(model, x).reshape(n, -1)
    got_c = binary.run(x)
    got_np = reference_invoke(binary.compiled.program, x).reshape(n, -1)
    np.testing.assert_array_equal(got_np, expected, err_msg="numpy twin vs LiteRT BUILTIN_REF")
    np.testing.assert_array_equal(got_c, expected, err_msg="generated C vs LiteRT BUILTIN_REF")
    # A model whose outputs never vary would make the comparison meaningless.
    assert len(np.unique(expected)) > 1, "degenerate test model: constant output"
    return binary.compiled.report
