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


def check_inputs(model: bytes, x: np.ndarray, workdir: Path, op: str | None = None):
    """Run inputs x (batch first) three ways and require identical bytes.

    Returns (LiteRT's outputs as (N, -1), the compile report); `op` must be in the model.
    """
    n = x.shape[0]
    binary = compile_and_build(model, workdir)
    report = binary.compiled.report
    if op is not None:
        assert op in report["ops"], report["ops"]
    expected = litert_reference(model, x).reshape(n, -1)
    got_np = reference_invoke(binary.compiled.program, x).reshape(n, -1)
    np.testing.assert_array_equal(got_np, expected, err_msg="numpy twin vs LiteRT BUILTIN_REF")
    np.testing.assert_array_equal(
        binary.run(x), expected, err_msg="generated C vs LiteRT BUILTIN_REF"
    )
    return expected, report


def assert_parity(model: bytes, workdir: Path, n: int = 200, seed: int = 0) -> dict:
    """Compile, run n random inputs three ways, require identical bytes; returns the report."""
    expected, report = check_inputs(model, random_inputs(model, n, seed), workdir)
    # A model whose outputs never vary would make the comparison meaningless.
    assert len(np.unique(expected)) > 1, "degenerate test model: constant output"
    return report


def tflm_outputs(model: bytes, x: np.ndarray, arena_size: int = 1 << 20) -> np.ndarray:
    """The `tflite_micro` interpreter's int8 outputs (N, -1) for inputs x (batch first):
    the second oracle, and the only one for files LiteRT refuses."""
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model, arena_size=arena_size)
    out = []
    for row in x:
        interp.set_input(row, 0)
        interp.invoke()
        out.append(interp.get_output(0).reshape(-1).copy())
    return np.stack(out)
