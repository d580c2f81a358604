"""LOGISTIC: generated C, the numpy twin and LiteRT BUILTIN_REF give the same int8 bytes."""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from models import cached
from parity import check_inputs

from tinysmile.compiler.ops.logistic import sigmoid_table
from tinysmile.compiler.oracle import litert_reference

N = 300


def _sigmoid_only(tf, x):
    return tf.keras.layers.Activation("sigmoid")(x)


def _conv_sigmoid(tf, x):
    # one input channel: a narrow pre-activation range, so a fine input scale
    return tf.keras.layers.Conv2D(4, 1, activation="sigmoid")(x)


def _wide_conv_sigmoid(tf, x):
    # 3x3x8 taps: a wide pre-activation range, so a coarse input scale
    return tf.keras.layers.Conv2D(6, 3, padding="same", activation="sigmoid")(x)


MODELS = {
    "logistic_only": (_sigmoid_only, (1, 16, 16, 1)),
    "conv_logistic": (_conv_sigmoid, (1, 5, 5, 1)),
    "wide_conv_logistic": (_wide_conv_sigmoid, (1, 6, 6, 8)),
}


def model(name: str) -> bytes:
    build, shape = MODELS[name]
    return cached(name, build, shape)


def check(model_bytes: bytes, x: np.ndarray, workdir: Path) -> np.ndarray:
    return check_inputs(model_bytes, x, workdir, op="LOGISTIC")[0]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_random_inputs(name: str, tmp_path: Path) -> None:
    m = model(name)
    shape = MODELS[name][1]
    x = np.random.default_rng(1).integers(-128, 128, (N, *shape), dtype=np.int8)
    y = check(m, x, tmp_path)
    assert len(np.unique(y)) > 10, "degenerate model: outputs barely vary"


def with_input_quant(model_bytes: bytes, scale: float, zero_point: int) -> bytes:
    """The same model with the quantization of its input tensor replaced."""
    m = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    sub = m.subgraphs[0]
    q = sub.tensors[sub.inputs[0]].quantization
    q.scale, q.zeroPoint = [scale], [zero_point]
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


@pytest.mark.parametrize(
    "scale,zero_point", [(None, None), (0.05, 0), (0.1, -20), (0.37, 5), (0.0123, 90)]
)
def test_every_input_byte(scale, zero_point, tmp_path: Path) -> None:
    """A model that is only LOGISTIC, fed all 256 input values at once: the whole table,
    for input scales from barely-curved to saturating at both ends."""
    m = model("logistic_only")
    if scale is not None:
        m = with_input_quant(m, scale, zero_point)
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 16, 16, 1)
    y = check(m, x, tmp_path).ravel().astype(int)
    assert (np.diff(y) >= 0).all(), "sigmoid must be monotonic"
    assert len(np.unique(y)) > 20
    if scale is not None and scale >= 0.1:
        assert y.min() == -128 and y.max() == 127


def test_table_rounding() -> None:
    """Hand-checked entries: sigmoid(0) = 0.5 is 128 steps of 1/256 above -128 -> 0."""
    t = sigmoid_table(0.1, 0, 1 / 256, -128)
    assert t[128] == 0  # input 0
    assert t[0] == -128 + round(256 / (1 + np.exp(12.8)))  # input -128 -> x = -12.8
    assert t[255] == 127  # 256 * sigmoid(12.7) rounds to 256, clamped


def test_table_at_many_scales() -> None:
    """The compile-time table equals LiteRT's for 150 random input quantizations (LiteRT
    only, no C build: the C kernel is a plain lookup checked above). Finds float32 vs
    float64 slips that a handful of scales would miss."""
    base = model("logistic_only")
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 16, 16, 1)
    rng = np.random.default_rng(8)
    for _ in range(150):
        scale = float(np.float32(10 ** rng.uniform(-3, 0)))
        zero_point = int(rng.integers(-128, 128))
        expected = litert_reference(with_input_quant(base, scale, zero_point), x).ravel()
        table = sigmoid_table(scale, zero_point, 1 / 256, -128)
        np.testing.assert_array_equal(table, expected, err_msg=f"scale {scale} zp {zero_point}")
