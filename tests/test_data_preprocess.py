"""Preprocessing: spec round trip, face crop, float/int8 mapping, train == serve bytes."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import flatbuffers
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from tinysmile.data.preprocess import (
    PreprocessSpec,
    decode_image,
    detect_faces,
    load_image,
    preprocess,
    preprocess_detailed,
    preprocess_files,
    round_half_away,
    spec_for_sources,
    to_float,
    to_int8,
)
from tinysmile.errors import TinysmileError

REPO = Path(__file__).resolve().parents[1]
SMILESMILED = Path(
    os.environ.get("TINYSMILE_SMILESMILED", REPO.parent / "shared" / "datasets" / "smilesmiled")
)
POSITIVES = SMILESMILED / "SMILEs" / "positives" / "positives7"
needs_smilesmiled = pytest.mark.skipif(
    not POSITIVES.is_dir(), reason=f"SMILEsmileD not found at {SMILESMILED}"
)


def test_spec_round_trip_and_validation():
    spec = PreprocessSpec(height=48, width=40, face_crop="haar", crop_margin=0.3, pixel_std=127.5)
    d = spec.to_dict()
    assert d["face_crop"] == "haar"
    assert PreprocessSpec.from_dict(d) == spec
    assert PreprocessSpec.from_dict({}) == PreprocessSpec()
    # what SMILEsmileD (already face crops) trains with
    assert PreprocessSpec().face_crop == "none"
    with pytest.raises(TinysmileError, match="unknown field"):
        PreprocessSpec.from_dict({"hieght": 64})
    with pytest.raises(TinysmileError, match="face_crop"):
        PreprocessSpec(face_crop="dlib")
    with pytest.raises(TinysmileError, match="height must be int|must be int"):
        PreprocessSpec.from_dict({"height": 6.5})
    with pytest.raises(TinysmileError, match="grayscale"):
        PreprocessSpec(channels=3)


def test_spec_for_sources():
    assert spec_for_sources(["smilesmiled"]).face_crop == "none"
    # tight crops: smaller than a Haar box, centred lower (bench/bench_pi.py --framing)
    framing = spec_for_sources(["smilesmiled"])
    assert (framing.crop_margin, framing.crop_shift_y) == (-0.12, 0.076)
    assert spec_for_sources(["smilesmiled", "fer2013", "folder"]).face_crop == "none"
    assert spec_for_sources(["smilesmiled", "genki4k"]).face_crop == "haar"
    assert spec_for_sources(["celeba"], 32, 48) == PreprocessSpec(32, 48, face_crop="haar")


def test_load_image_errors(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(TinysmileError, match="bad.jpg: not a readable image"):
        load_image(bad)
    with pytest.raises(TinysmileError, match="cannot read"):
        load_image(tmp_path / "missing.png")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(TinysmileError, match="not a readable image"):
        load_image(empty)


def test_preprocess_gray_and_bgr_centre_crop():
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (30, 50), dtype=np.uint8)
    spec = PreprocessSpec(height=30, width=30)
    out = preprocess(spec, gray)
    assert out.shape == (30, 30, 1) and out.dtype == np.uint8
    # centre square of a 30x50 image starts at column 10, and needs no resize
    assert_array_equal(out[:, :, 0], gray[:, 10:40])
    bgr = np.repeat(gray[:, :, None], 3, axis=2)
    assert_array_equal(preprocess(spec, bgr), out)  # equal channels -> the same grey
    small = preprocess(PreprocessSpec(height=15, width=15), gray)
    assert small.shape == (15, 15, 1)


@needs_smilesmiled
def test_haar_finds_face_and_falls_back_when_none(tmp_path):
    face = load_image(POSITIVES / "100.jpg")  # one Haar does find once pasted into a scene
    big = cv2.resize(face, (128, 128), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((240, 320), 128, dtype=np.uint8)
    canvas[60:188, 150:278] = big
    spec = PreprocessSpec(face_crop="haar", crop_margin=0.1)
    r = preprocess_detailed(spec, canvas)
    assert r.face_found
    x, y, w, h = r.crop
    assert w == h
    # Centred on the pasted face (centre 214, 124), not on the canvas (160, 120); Haar
    # boxes are looser than SMILEsmileD's crops, so only the centre is pinned down.
    assert abs(x + w / 2 - 214) <= 20 and abs(y + h / 2 - 124) <= 20
    assert r.pixels.shape == (64, 64, 1)

    # import --detect-faces records the same box in the store
    from tinysmile.data.importers import import_dataset
    from tinysmile.data.store import Store

    (tmp_path / "scenes" / "smile").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "scenes" / "smile" / "scene.png"), canvas)
    with Store(tmp_path / "store") as store:
        assert import_dataset("folder", tmp_path / "scenes", store, detect_faces=True).added == 1
        (sample,) = store.samples()
    assert sample.face_box == tuple(detect_faces(spec, canvas)[0])

    flat = np.full((100, 160), 90, dtype=np.uint8)
    flat[:, :30] = 10
    r = preprocess_detailed(spec, flat)
    assert not r.face_found
    assert r.crop == (30, 0, 100, 100)
    assert_array_equal(r.pixels, np.full((64, 64, 1), 90, dtype=np.uint8))


def test_to_float_is_pixel_over_255():
    spec = PreprocessSpec()
    p = np.arange(256, dtype=np.uint8)
    f = to_float(spec, p)
    assert f.dtype == np.float32
    assert_array_equal(f, p.astype(np.float32) / np.float32(255.0))
    assert spec.float_range() == (0.0, 1.0)
    assert PreprocessSpec(pixel_mean=127.5, pixel_std=127.5).float_range() == (-1.0, 1.0)
    with pytest.raises(TinysmileError, match="uint8"):
        to_float(spec, p.astype(np.int16))


def test_round_half_away_from_zero():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49999997, -0.49999997, 2.4999998], np.float32)
    assert_array_equal(round_half_away(x), [1, 2, 3, -1, -2, 0, 0, 2])


def _quantize_model(n: int, scale: float, zero_point: int) -> bytes:
    """A one-op .tflite: float32[n] -> QUANTIZE -> int8[n] with the given parameters."""
    from ai_edge_litert import schema_py_generated as s

    def tensor(name: str, ttype: int, buffer: int, q: object | None) -> object:
        t = s.TensorT()
        t.shape, t.type, t.buffer, t.name, t.quantization = [n], ttype, buffer, name, q
        return t

    q = s.QuantizationParametersT()
    q.scale, q.zeroPoint = [scale], [zero_point]
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    sub = s.SubGraphT()
    sub.tensors = [
        tensor("in", s.TensorType.FLOAT32, 1, None),
        tensor("out", s.TensorType.INT8, 2, q),
    ]
    sub.inputs, sub.outputs, sub.operators = [0], [1], [op]
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.QUANTIZE
    code.version = 1
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [sub]
    model.buffers = [s.BufferT(), s.BufferT(), s.BufferT()]
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


@pytest.mark.parametrize(
    ("mean", "std", "scale", "zero_point"),
    [
        (0.0, 255.0, 1.0 / 255.0, -128),  # the usual full-range [0, 1] input
        (0.0, 255.0, 0.003921568859368563, -128),  # float32 of 1/255, as converters write it
        (127.5, 127.5, 0.0078125, 0),  # [-1, 1] input
        (0.0, 255.0, 0.0031, -100),  # clamps at 127 and has exact .5 ties
        (0.0, 1.0, 2.0, 5),  # f/scale lands on k + 0.5 for every odd pixel
    ],
)
def test_to_int8_matches_litert_quantize(mean, std, scale, zero_point):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    spec = PreprocessSpec(pixel_mean=mean, pixel_std=std)
    pixels = np.arange(256, dtype=np.uint8)
    interp = Interpreter(
        model_content=_quantize_model(256, scale, zero_point),
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
    )
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], to_float(spec, pixels))
    interp.invoke()
    expected = interp.get_tensor(interp.get_output_details()[0]["index"])
    assert expected.dtype == np.int8
    assert_array_equal(to_int8(spec, pixels, scale, zero_point), expected)


@needs_smilesmiled
def test_train_and_serve_paths_give_the_same_bytes(tmp_path):
    """Training reads store files; serving gets encoded frames (or arrays) from a camera."""
    from tinysmile.bundle import load_bundle, write_bundle
    from tinysmile.data.importers import import_dataset
    from tinysmile.data.store import Store

    # training records the spec in the bundle; serving reads it back from bundle.json. The
    # framing is SMILEsmileD's crops around a Haar box, as bench/bench_pi.py measured it.
    train_spec = PreprocessSpec(crop_margin=-0.12, crop_shift_y=0.076)
    write_bundle(tmp_path / "bundle", b"not a real model", {"preprocess": train_spec.to_dict()})
    spec = PreprocessSpec.from_dict(load_bundle(tmp_path / "bundle").preprocess)
    assert spec == train_spec
    with Store(tmp_path / "store") as store:
        import_dataset("smilesmiled", SMILESMILED, store, limit=12)
        samples = store.samples()
    assert len(samples) == 12
    assert spec_for_sources(Store(tmp_path / "store").sources()) == train_spec
    batch = preprocess_files(spec, [s.path for s in samples])
    assert batch.shape == (12, 64, 64, 1) and batch.dtype == np.uint8
    for sample, pixels in zip(samples, batch):
        train = to_int8(spec, pixels, 1 / 255, -128)
        serve_bytes = (Path(sample.original)).read_bytes()  # the untouched original file
        serve = to_int8(spec, preprocess(spec, decode_image(serve_bytes)), 1 / 255, -128)
        assert_array_equal(train, serve)
        # and the colour frame a camera would hand over
        bgr = cv2.cvtColor(decode_image(serve_bytes), cv2.COLOR_GRAY2BGR)
        assert_array_equal(to_int8(spec, preprocess(spec, bgr), 1 / 255, -128), train)
        assert train.shape == (64, 64, 1)
