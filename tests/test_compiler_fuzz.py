"""Malformed models never crash the compiler: seeded mutations of the bundled model (byte
flips, flips and hostile 32-bit values in the flatbuffer's structure, truncations) either
compile, and then compute what LiteRT computes, or are refused with one line and exit 2."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
from litert_child import run_all
from mutate import mutations

from tinysmile.cli import main
from tinysmile.compiler.hostrun import compile_and_build
from tinysmile.compiler.program import build_program
from tinysmile.compiler.reference import reference_invoke
from tinysmile.resources import models_dir

MUTANTS = 400
SEED = 20261130
SECONDS_PER_MUTANT = 10  # a compile takes milliseconds: this only tells a hang from slowness


class Hung(Exception):
    pass


def _alarm(signum, frame):
    raise Hung()


@pytest.mark.slow
def test_mutated_models_compile_or_get_one_line(tmp_path, capsys):
    original = (models_dir() / "smile_default" / "model.tflite").read_bytes()
    previous = signal.signal(signal.SIGALRM, _alarm)
    compiled: list[Path] = []
    refused = 0
    try:
        for i, (kind, data) in enumerate(mutations(original, MUTANTS, seed=SEED)):
            path = tmp_path / f"m{i:03d}.tflite"
            path.write_bytes(data)
            out = tmp_path / f"out{i:03d}"
            signal.alarm(SECONDS_PER_MUTANT)
            try:
                code = main(["compile", str(path), "--out", str(out), "--json"])
            except Hung:
                pytest.fail(f"mutant {i} ({kind}) hung the compiler")
            finally:
                signal.alarm(0)
            captured = capsys.readouterr()
            assert "Traceback" not in captured.err, (i, kind, captured.err)
            if code == 0:
                assert any(out.glob("*_model.c")), f"mutant {i} compiled but wrote no C"
                compiled.append(path)
                continue
            lines = [line for line in captured.err.splitlines() if line.strip()]
            assert code == 2, (i, kind, code, captured.err)
            assert len(lines) == 1 and lines[0].startswith("error: "), (i, kind, captured.err)
            assert not out.exists(), f"mutant {i} was refused but wrote {out}"
            refused += 1
    finally:
        signal.signal(signal.SIGALRM, previous)
    # The mix must exercise both outcomes, or the test says nothing about one of them.
    assert refused >= MUTANTS // 4 and len(compiled) >= MUTANTS // 10, (refused, len(compiled))

    # Whatever compiled must be exact: its numpy twin against LiteRT BUILTIN_REF (in a child
    # process, since a mutated model may crash LiteRT itself) on every mutant LiteRT loads,
    # and the generated C under ASan/UBSan on a few of them.
    rng = np.random.default_rng(SEED)
    shape = build_program(original).graph.input.shape
    x = rng.integers(-128, 128, size=(6, *shape), dtype=np.int8)
    oracle = run_all(compiled, x, tmp_path)
    checked = []
    for path in compiled:
        expected = oracle[path]
        if isinstance(expected, str):
            continue
        program = build_program(path.read_bytes())
        got = reference_invoke(program, x).reshape(len(x), -1)
        np.testing.assert_array_equal(got, expected, err_msg=f"{path.name}: twin vs LiteRT")
        checked.append((path, expected))
    print(
        f"{MUTANTS} mutants: {refused} refused with one line, {len(compiled)} compiled;"
        f" LiteRT ran {len(checked)} of those, all equal to the twin"
    )
    assert len(checked) >= len(compiled) // 2, "LiteRT loaded too few mutants to compare"
    for path, expected in checked[:: max(1, len(checked) // 4)][:4]:
        binary = compile_and_build(path.read_bytes(), tmp_path / f"c-{path.stem}")
        np.testing.assert_array_equal(binary.run(x), expected, err_msg=f"{path.name}: C vs LiteRT")
