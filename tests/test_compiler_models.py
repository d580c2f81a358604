"""Whole models: the smile-like CNN and a MobileNet-like block, bit-exact with LiteRT and
TFLite Micro, per layer too, within the arena TFLM needs."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from models import (
    build_dscnn,
    build_mobilenet_block,
    build_random_chain,
    build_smile_like,
    build_xception,
)
from parity import assert_parity, random_inputs, tflm_outputs

from tinysmile.compiler.hostrun import compile_and_build
from tinysmile.compiler.program import build_program
from tinysmile.compiler.reference import reference_layers
from tinysmile.compiler.tflm import tflm_arena

pytestmark = pytest.mark.slow

MODELS = {"smile_like": build_smile_like, "mobilenet_block": build_mobilenet_block}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_parity_with_litert(name, tmp_path):
    report = assert_parity(MODELS[name](), tmp_path, n=250, seed=1)
    expected_ops = {
        "smile_like": {
            "CONV_2D",
            "MAX_POOL_2D",
            "MUL",
            "ADD",
            "RESHAPE",
            "FULLY_CONNECTED",
            "LOGISTIC",
        },
        "mobilenet_block": {
            "CONV_2D",
            "DEPTHWISE_CONV_2D",
            "ADD",
            "MEAN",
            "FULLY_CONNECTED",
            "SOFTMAX",
        },
    }[name]
    assert expected_ops <= set(report["ops"])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_parity_with_tflite_micro(name, tmp_path):
    model = MODELS[name]()
    binary = compile_and_build(model, tmp_path, sanitize=False)
    x = random_inputs(model, 40, seed=2)
    np.testing.assert_array_equal(binary.run(x), tflm_outputs(model, x))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_layer_matches_the_numpy_twin(name, tmp_path):
    model = MODELS[name]()
    binary = compile_and_build(model, tmp_path, layer_hooks=True)
    x = random_inputs(model, 8, seed=3)
    dumps = binary.run(x)
    for row, layers in zip(x, dumps):
        twins = reference_layers(binary.compiled.program, row)
        assert len(layers) == len(twins) + 1
        for k, (got, want) in enumerate(zip(layers, twins)):
            np.testing.assert_array_equal(got, want.reshape(-1), err_msg=f"layer {k}")
        np.testing.assert_array_equal(layers[-1], twins[-1].reshape(-1))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_arena_not_larger_than_tflm(name):
    model = MODELS[name]()
    ours = build_program(model).plan.arena_size
    tflm = tflm_arena(model)
    assert ours <= tflm["head"], (ours, tflm)


PLANNED = {
    **MODELS,
    "dscnn": build_dscnn,
    # residual branches over chains of offset in-place pairs: where the local search over
    # placement orders moves groups furthest from the greedy orders
    "xception": build_xception,
    **{f"random_chain{seed}": functools.partial(build_random_chain, seed) for seed in (1, 2, 4)},
}


@pytest.mark.parametrize("name", sorted(PLANNED))
def test_planner_never_overlaps_live_tensors(name):
    """Groups alive together are disjoint, except an offset in-place pair whose output
    starts at least its proven lead before its input (see planner and window_lead)."""
    prog = build_program(PLANNED[name]())
    allowed = {(dst, src): lead for dst, src, lead in prog.plan.overlaps}
    groups = prog.plan.groups
    arena = [k for k, grp in enumerate(groups) if grp.storage == "arena"]
    for i, ka in enumerate(arena):
        a = groups[ka]
        assert a.offset + a.size <= prog.plan.arena_size
        for kb in arena[i + 1 :]:
            b = groups[kb]
            alive_together = a.first <= b.last and b.first <= a.last
            disjoint = a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
            if not alive_together or disjoint:
                continue
            if (ka, kb) in allowed:
                assert a.offset + allowed[(ka, kb)] <= b.offset, (a, b)
            elif (kb, ka) in allowed:
                assert b.offset + allowed[(kb, ka)] <= a.offset, (a, b)
            else:
                raise AssertionError((a, b))


def _float_edges(tf, x):
    L = tf.keras.layers
    return L.Dense(3)(L.Flatten()(L.Conv2D(4, 3, activation="relu")(x)))


def test_float_edges_are_stripped(tmp_path):
    """A model converted with float input/output has QUANTIZE/DEQUANTIZE at its edges:
    the compiled model takes and returns int8, and equals LiteRT fed the exact floats."""
    from models import cached

    from tinysmile.compiler.oracle import litert_reference

    model = cached("float_edges", _float_edges, (1, 8, 8, 1), int8_io=False)
    binary = compile_and_build(model, tmp_path)
    prog = binary.compiled.program
    assert len(prog.stripped) == 2
    x = random_inputs(model, 100, seed=4)
    g = prog.graph
    expected = litert_reference(
        model, x, (g.input.scale, g.input.zero_point), (g.output.scale, g.output.zero_point)
    )
    np.testing.assert_array_equal(binary.run(x), expected.reshape(100, -1))
