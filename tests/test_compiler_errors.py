"""Every kind of bad input gets a one-line error naming what and where, exit status 2,
no traceback, and nothing written."""

from __future__ import annotations

import numpy as np
import pytest
from models import build_smile_like, cached

from tinysmile.cli import main


def _run_compile(model_path, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["compile", str(model_path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert not out.exists(), "a refused model must write nothing"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def _write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_not_a_flatbuffer(tmp_path, capsys):
    p = _write(tmp_path, "notes.tflite", b"this is not a model at all, just text\n" * 4)
    msg = _run_compile(p, tmp_path, capsys)
    assert "notes.tflite" in msg and "not a TFLite flatbuffer" in msg


def test_truncated_file(tmp_path, capsys):
    data = build_smile_like()
    p = _write(tmp_path, "cut.tflite", data[: len(data) // 3])
    msg = _run_compile(p, tmp_path, capsys)
    assert "cut.tflite" in msg and ("truncated" in msg or "damaged" in msg)


def test_missing_file(tmp_path, capsys):
    msg = _run_compile(tmp_path / "nowhere.tflite", tmp_path, capsys)
    assert "nowhere.tflite" in msg


def _small_cnn(tf, x):
    L = tf.keras.layers
    x = L.Conv2D(4, 3, activation="relu")(x)
    return L.Dense(2)(L.Flatten()(x))


@pytest.mark.slow
def test_float_model(tmp_path, capsys):
    p = _write(tmp_path, "f.tflite", cached("float_cnn", _small_cnn, (1, 8, 8, 1), mode="float"))
    msg = _run_compile(p, tmp_path, capsys)
    assert "float model" in msg and "op 0 (CONV_2D)" in msg


def _wide_dense(tf, x):
    # the converter leaves weight tensors under 1024 values in float: make one larger
    return tf.keras.layers.Dense(64)(tf.keras.layers.Flatten()(x))


@pytest.mark.slow
def test_dynamic_range_model(tmp_path, capsys):
    model = cached("dynamic_dense", _wide_dense, (1, 8, 8, 1), mode="dynamic")
    msg = _run_compile(_write(tmp_path, "d.tflite", model), tmp_path, capsys)
    assert "dynamic-range quantized model" in msg


@pytest.mark.slow
def test_int16_activations(tmp_path, capsys):
    model = cached("int16_cnn", _small_cnn, (1, 8, 8, 1), mode="int16")
    msg = _run_compile(_write(tmp_path, "i16.tflite", model), tmp_path, capsys)
    assert "int16 activations" in msg and "tensor" in msg


def _unsupported(tf, x):
    L = tf.keras.layers
    x = L.Conv2D(4, 3)(x)
    x = L.Activation("tanh")(x)
    return L.LeakyReLU(0.1)(x)


@pytest.mark.slow
def test_unsupported_ops_named_all_at_once(tmp_path, capsys):
    model = cached("unsupported", _unsupported, (1, 8, 8, 1))
    msg = _run_compile(_write(tmp_path, "u.tflite", model), tmp_path, capsys)
    assert "TANH (op 1)" in msg and "LEAKY_RELU (op 2)" in msg


def _dilated(tf, x):
    return tf.keras.layers.Conv2D(4, 3, dilation_rate=2)(x)


@pytest.mark.slow
def test_dilation(tmp_path, capsys):
    model = cached("dilated", _dilated, (1, 12, 12, 1))
    msg = _run_compile(_write(tmp_path, "dil.tflite", model), tmp_path, capsys)
    assert "dilation" in msg and "op 0" in msg


@pytest.mark.slow
def test_dynamic_batch(tmp_path, capsys):
    model = cached("dynamic_batch", _small_cnn, (None, 8, 8, 1))
    msg = _run_compile(_write(tmp_path, "dyn.tflite", model), tmp_path, capsys)
    assert "dynamic shape" in msg and "batch size of 1" in msg


def test_bad_inputs_for_run_host(tmp_path, capsys):
    model = _write(tmp_path, "m.tflite", build_smile_like())
    bad = tmp_path / "x.npy"
    np.save(bad, np.zeros((3, 10), dtype=np.int8))
    code = main(["run-host", str(model), "--inputs", str(bad), "--output", str(tmp_path / "y.npy")])
    err = capsys.readouterr().err
    assert code == 2 and "is not a batch of inputs of 4096 values" in err
    np.save(bad, np.zeros((3, 64, 64, 1), dtype=np.float32))
    code = main(["run-host", str(model), "--inputs", str(bad), "--output", str(tmp_path / "y.npy")])
    assert code == 2 and "must be int8" in capsys.readouterr().err
