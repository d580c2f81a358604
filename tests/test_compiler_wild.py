"""Models as converters write them from the wild: a dynamic batch in the shape signature
compiles as batch 1 (only real shape computation is refused), and a layer whose int32
accumulator can overflow is refused before any C is written."""

from __future__ import annotations

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from models import cached
from parity import assert_parity, check_inputs, tflm_outputs

from tinysmile.cli import main
from tinysmile.compiler.hostrun import compile_and_build
from tinysmile.compiler.program import build_program

INT32_MAX = 2**31 - 1


def _hello_world(tf, x):
    # TFLite Micro's hello_world: three FULLY_CONNECTED on a (batch, 1) input.
    L = tf.keras.layers
    x = L.Dense(16, activation="relu")(x)
    x = L.Dense(16, activation="relu")(x)
    return L.Dense(1)(x)


def _conv_flatten(tf, x):
    L = tf.keras.layers
    x = L.Conv2D(4, 3, activation="relu")(x)
    return L.Dense(2)(L.Flatten()(x))


def hello_world_dynamic_batch() -> bytes:
    return cached("hello_world_dyn", _hello_world, (None, 1))


def _repack(m) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.mark.slow
def test_dynamic_batch_signature_compiles_as_batch_one(tmp_path, capsys):
    model = hello_world_dynamic_batch()
    m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    sg = m.subgraphs[0]
    # The premise: static shapes, -1 only as the batch of the signature.
    assert list(sg.tensors[sg.inputs[0]].shape) == [1, 1]
    assert list(sg.tensors[sg.inputs[0]].shapeSignature) == [-1, 1]
    report = assert_parity(model, tmp_path / "c", n=256)
    assert report["ops"] == ["FULLY_CONNECTED"]
    assert any("compiled as batch 1" in note for note in report["notes"]), report["notes"]
    path = tmp_path / "hello_world.tflite"
    path.write_bytes(model)
    assert main(["compile", str(path), "--out", str(tmp_path / "out")]) == 0
    assert "compiled as batch 1" in capsys.readouterr().out


@pytest.mark.slow
def test_shape_computation_is_refused(tmp_path, capsys):
    path = tmp_path / "flatten.tflite"
    path.write_bytes(cached("conv_flatten_dyn", _conv_flatten, (None, 8, 8, 1)))
    assert main(["compile", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "dynamic shape computation" in err and "batch size of 1" in err
    assert "SHAPE" in err and "STRIDED_SLICE" in err and "PACK" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_dynamic_dimension_outside_the_batch_is_refused(tmp_path, capsys):
    m = schema.ModelT.InitFromPackedBuf(bytearray(hello_world_dynamic_batch()), 0)
    sg = m.subgraphs[0]
    hidden = sg.operators[0].outputs[0]
    sg.tensors[hidden].shapeSignature = [1, -1]
    path = tmp_path / "dyn_width.tflite"
    path.write_bytes(_repack(m))
    assert main(["compile", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert f"tensor {hidden}" in err and "dynamic shape [1, -1]" in err


def _small_conv(tf, x):
    return tf.keras.layers.Conv2D(2, 3, activation="relu")(x)


def _with_bias(model: bytes, channel: int, value: int) -> bytes:
    m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    sg = m.subgraphs[0]
    conv = sg.operators[0]
    buf = m.buffers[sg.tensors[conv.inputs[2]].buffer]
    bias = np.frombuffer(bytes(np.asarray(buf.data, dtype=np.uint8)), dtype=np.int32).copy()
    bias[channel] = value
    buf.data = np.frombuffer(bias.tobytes(), dtype=np.uint8)
    return _repack(m)


@pytest.mark.slow
def test_int32_overflow_refused_at_the_exact_limit(tmp_path, capsys):
    base = cached("overflow_conv", _small_conv, (1, 6, 6, 1))
    m = schema.ModelT.InitFromPackedBuf(bytearray(base), 0)
    sg = m.subgraphs[0]
    conv = sg.operators[0]
    x_t = sg.tensors[conv.inputs[0]]
    zp = int(x_t.quantization.zeroPoint[0])
    w_buf = m.buffers[sg.tensors[conv.inputs[1]].buffer]
    w = np.frombuffer(bytes(np.asarray(w_buf.data, dtype=np.uint8)), dtype=np.int8)
    w0 = w.reshape(2, 3, 3)[0].astype(np.int64)
    # The most positive sum channel 0 can reach: every input at the int8 extreme whose sign
    # agrees with its weight (written out here from the definition, not from the compiler).
    best = int(sum(wi * ((127 if wi > 0 else -128) - zp) for wi in w0.reshape(-1)))
    assert best > 0
    at_limit = _with_bias(base, 0, INT32_MAX - best)
    over = _with_bias(base, 0, INT32_MAX - best + 1)

    # At the limit it compiles, and the input that reaches the limit runs clean under
    # UBSan and equals LiteRT.
    adversarial = np.zeros((1, 6, 6, 1), dtype=np.int8)
    adversarial[0, :3, :3, 0] = np.where(w0 > 0, 127, -128).astype(np.int8)
    rng = np.random.default_rng(3)
    x = np.concatenate([adversarial, rng.integers(-128, 128, (15, 6, 6, 1), dtype=np.int8)])
    check_inputs(at_limit, x, tmp_path / "limit")

    path = tmp_path / "over.tflite"
    path.write_bytes(over)
    assert main(["compile", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "op 0 (CONV_2D)" in err and f"{INT32_MAX + 1:,}" in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_every_accumulating_op_reports_a_bound():
    # The check is only as good as the ops that take part: every op with weights must.
    from models import build_mobilenet_block, build_smile_like

    for model in (build_smile_like(), build_mobilenet_block()):
        prog = build_program(model)
        for layer in prog.layers:
            bound = layer.spec.accumulator_bound(prog.graph, layer.op)
            has_weights = layer.op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
            assert (bound is not None) == has_weights, layer.op.kind
            if has_weights:
                assert 0 < bound < INT32_MAX


@pytest.mark.slow
def test_a_bias_quantized_along_the_convs_output_axis_compiles(tmp_path):
    """TFLite Micro's original person_detect.tflite writes quantized_dimension 3 on its 1-D
    conv biases (the conv output's axis, as older converters did). TFLite Micro runs it, so
    it compiles, with the same bytes as TFLite Micro's interpreter on that very file; what
    would index out of bounds (scales that match no axis) is still refused."""
    base = cached("old_bias_axis_conv", _small_conv, (1, 6, 6, 1))
    m = schema.ModelT.InitFromPackedBuf(bytearray(base), 0)
    sg = m.subgraphs[0]
    bias = sg.tensors[sg.operators[0].inputs[2]]
    assert len(bias.quantization.scale) == 2 and bias.quantization.quantizedDimension == 0
    bias.quantization.quantizedDimension = 3
    old = _repack(m)
    assert old != base

    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (24, 1, 6, 6, 1), dtype=np.int8)
    want = tflm_outputs(old, x, arena_size=1 << 16)
    expected, _ = check_inputs(base, x.reshape(24, 6, 6, 1), tmp_path / "base")
    np.testing.assert_array_equal(want, expected)  # the axis changes no byte
    binary = compile_and_build(old, tmp_path / "old")
    np.testing.assert_array_equal(binary.run(x.reshape(24, 6, 6, 1)), want)

    # Three scales on the two-channel bias match none of its axes: still refused.
    bias.quantization.scale = [0.1, 0.2, 0.3]
    bias.quantization.zeroPoint = [0, 0, 0]
    path = tmp_path / "bad.tflite"
    path.write_bytes(_repack(m))
    assert main(["compile", str(path), "--out", str(tmp_path / "out")]) == 2
