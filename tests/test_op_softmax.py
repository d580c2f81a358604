"""SOFTMAX: generated C, the numpy twin and LiteRT BUILTIN_REF give the same int8 bytes."""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from models import cached
from parity import check_inputs

from tinysmile.compiler.ops.softmax import softmax_scaling
from tinysmile.compiler.oracle import litert_reference
from tinysmile.compiler.reference import reference_invoke

N = 300


def _softmax_only(tf, x):
    return tf.keras.layers.Softmax()(x)


def _conv_softmax2(tf, x):
    return tf.keras.layers.Softmax()(tf.keras.layers.Conv2D(2, 1)(x))


def _conv_softmax3(tf, x):
    return tf.keras.layers.Softmax()(tf.keras.layers.Conv2D(3, 1)(x))


def _conv_softmax10(tf, x):
    return tf.keras.layers.Softmax()(tf.keras.layers.Conv2D(10, 3, padding="same")(x))


MODELS = {
    "softmax_only": (_softmax_only, (1, 10)),
    "conv_softmax2": (_conv_softmax2, (1, 4, 4, 3)),
    "conv_softmax3": (_conv_softmax3, (1, 3, 5, 6)),
    "conv_softmax10": (_conv_softmax10, (1, 3, 3, 4)),
}


def model(name: str) -> bytes:
    build, shape = MODELS[name]
    return cached(name, build, shape)


def with_beta(model_bytes: bytes, beta: float) -> bytes:
    """The same model with every SOFTMAX's beta replaced (Keras always writes 1.0)."""
    m = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    softmax = [
        i
        for i, c in enumerate(m.operatorCodes)
        if max(c.builtinCode, c.deprecatedBuiltinCode) == schema.BuiltinOperator.SOFTMAX
    ]
    for op in m.subgraphs[0].operators:
        if op.opcodeIndex in softmax:
            op.builtinOptions.beta = beta
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def check(model_bytes: bytes, x: np.ndarray, workdir: Path) -> np.ndarray:
    return check_inputs(model_bytes, x, workdir, op="SOFTMAX")[0]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_random_inputs(name: str, tmp_path: Path) -> None:
    m = model(name)
    x = np.random.default_rng(2).integers(-128, 128, (N, *MODELS[name][1]), dtype=np.int8)
    y = check(m, x, tmp_path)
    assert len(np.unique(y)) > 10, "degenerate model: outputs barely vary"


@pytest.mark.parametrize("beta", [0.3, 2.5, 1000.0])
def test_beta(beta: float, tmp_path: Path) -> None:
    """beta is folded into the input multiplier; 1000 saturates it and hits diff_min."""
    m = with_beta(model("softmax_only"), beta)
    x = np.random.default_rng(3).integers(-128, 128, (N, 1, 10), dtype=np.int8)
    # narrow rows too, where many values tie with the maximum
    x[: N // 2] = np.random.default_rng(4).integers(-3, 3, (N // 2, 1, 10), dtype=np.int8)
    check(m, x, tmp_path)


def test_diff_min() -> None:
    # beta * scale * 2^26 capped at 2^31 - 1 = (1 - 2^-31) * 2^31: shift 31, and the
    # radius 31 * 2^26 / 2^31 floors to 0, so only values equal to the maximum count
    assert softmax_scaling(1000.0, 1.0) == ((1 << 31) - 1, 31, 0)
    # scale 1/16: real multiplier 2^22 -> Q31 0.5 with shift 23; radius 31 * 2^26 / 2^23
    assert softmax_scaling(1.0, 1 / 16) == (1 << 30, 23, -248)


def with_input_scale(model_bytes: bytes, scale: float) -> bytes:
    m = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    sub = m.subgraphs[0]
    sub.tensors[sub.inputs[0]].quantization.scale = [scale]
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_many_scalings() -> None:
    """The numpy twin equals LiteRT for 60 random (input scale, beta) pairs (LiteRT only,
    no C build: the C kernel's arithmetic is checked above and in test_fixedpoint)."""
    base = model("softmax_only")
    rng = np.random.default_rng(9)
    x = rng.integers(-128, 128, (40, 1, 10), dtype=np.int8)
    x[20:] = rng.integers(-5, 5, (20, 1, 10), dtype=np.int8)
    for _ in range(60):
        scale = float(np.float32(10 ** rng.uniform(-3, 0)))
        beta = float(np.float32(10 ** rng.uniform(-1, 1)))
        m = with_beta(with_input_scale(base, scale), beta)
        expected = litert_reference(m, x).reshape(40, -1)
        got = reference_invoke(m, x).reshape(40, -1)
        np.testing.assert_array_equal(got, expected, err_msg=f"scale {scale} beta {beta}")
