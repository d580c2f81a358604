"""MEAN over H and W: generated C, the numpy twin and LiteRT BUILTIN_REF agree exactly."""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from models import cached
from parity import check_inputs

from tinysmile.compiler.ops.mean import mean_multiplier
from tinysmile.compiler.program import build_program

N = 300


def _gap_only(tf, x):
    return tf.keras.layers.GlobalAveragePooling2D()(x)


def _conv_gap(tf, x):
    x = tf.keras.layers.Conv2D(6, 3, activation="relu")(x)
    return tf.keras.layers.GlobalAveragePooling2D()(x)


def _conv_gap_keepdims(tf, x):
    x = tf.keras.layers.Conv2D(5, 3, padding="same")(x)
    return tf.keras.layers.GlobalAveragePooling2D(keepdims=True)(x)


def _conv_gap_big(tf, x):
    x = tf.keras.layers.Conv2D(4, 1)(x)
    return tf.keras.layers.GlobalAveragePooling2D()(x)


MODELS = {
    "mean_only": (_gap_only, (1, 6, 6, 3)),  # 36 values per channel
    "conv_mean": (_conv_gap, (1, 9, 7, 3)),  # 7x5 = 35 per channel
    "conv_mean_keepdims": (_conv_gap_keepdims, (1, 4, 4, 2)),  # 16, a power of two
    "conv_mean_big": (_conv_gap_big, (1, 24, 20, 2)),  # 480 per channel
}


def model(name: str) -> bytes:
    build, shape = MODELS[name]
    return cached(name, build, shape)


def with_output_quant(model_bytes: bytes, scale: float | None, zero_point: int | None) -> bytes:
    """The same model with the MEAN output's quantization replaced (None: the input's)."""
    m = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    sub = m.subgraphs[0]
    mean = [
        i
        for i, c in enumerate(m.operatorCodes)
        if max(c.builtinCode, c.deprecatedBuiltinCode) == schema.BuiltinOperator.MEAN
    ]
    for op in sub.operators:
        if op.opcodeIndex in mean:
            src = sub.tensors[op.inputs[0]].quantization
            dst = sub.tensors[op.outputs[0]].quantization
            dst.scale = [src.scale[0] if scale is None else scale]
            dst.zeroPoint = [src.zeroPoint[0] if zero_point is None else zero_point]
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def check(model_bytes: bytes, x: np.ndarray, workdir: Path) -> np.ndarray:
    return check_inputs(model_bytes, x, workdir, op="MEAN")[0]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_random_inputs(name: str, tmp_path: Path) -> None:
    m = model(name)
    x = np.random.default_rng(5).integers(-128, 128, (N, *MODELS[name][1]), dtype=np.int8)
    y = check(m, x, tmp_path)
    assert len(np.unique(y)) > 5, "degenerate model: outputs barely vary"


@pytest.mark.parametrize(
    "scale,zero_point",
    [(None, None), (None, 7), (0.0009, -3), (0.5, 20)],
    ids=["same-quant", "other-zero-point", "finer-scale", "coarser-scale"],
)
def test_output_quantization(scale, zero_point, tmp_path: Path) -> None:
    """Rescaling on the way out, including none at all (the same scale and zero point)."""
    m = with_output_quant(model("mean_only"), scale, zero_point)
    x = np.random.default_rng(6).integers(-128, 128, (N, 1, 6, 6, 3), dtype=np.int8)
    # rows near one value, so that the rounding of the average decides the result
    x[: N // 2] = np.random.default_rng(7).integers(-2, 3, (N // 2, 1, 6, 6, 3), dtype=np.int8)
    check(m, x, tmp_path)


def test_keep_dims_shape() -> None:
    prog = build_program(model("conv_mean_keepdims"))
    layer = next(layer for layer in prog.layers if layer.op.kind == "MEAN")
    assert layer.op.options["keep_dims"]
    assert prog.graph.tensor(layer.op.outputs[0]).shape == (1, 1, 1, 5)


def test_multiplier_folds_count() -> None:
    # scale ratio 1 -> Q31 2^30, shift 1; count 36: shift by 5, 2^35 // 36, shift 1 - 5
    assert mean_multiplier(1.0, 1.0, 36) == ((1 << 35) // 36, -4)
