"""Test models built with TensorFlow: random weights, calibrated on random data, converted
to full int8 with int8 input and output. Cached on disk by their recipe, so a test session
converts each once."""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

RECIPE_VERSION = "2"  # bump when convert() changes what it produces
CACHE = Path(os.environ.get("TINYSMILE_TEST_CACHE", Path(__file__).parent / ".model_cache"))


def convert(
    build: Callable,
    input_shape: tuple[int, ...],
    seed: int = 0,
    calib: int = 64,
    int8_io: bool = True,
    per_tensor: bool = False,
    mode: str = "int8",
) -> bytes:
    """Build the Keras model with build(tf, inputs) and convert it: "int8" (full integer,
    the default), or the kinds the compiler must refuse: "float", "dynamic" (dynamic-range
    quantization) and "int16" (16-bit activations)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input(shape=input_shape[1:], batch_size=input_shape[0])
    outputs = build(tf, inputs)
    model = tf.keras.Model(inputs, outputs)
    rng = np.random.default_rng(seed)
    # Kernels keep Keras' random initialisation (scaled to fan-in, so activations neither
    # vanish nor saturate); biases and BatchNorm statistics, zero or one by default, are
    # randomised so that nothing is trivially zero or one.
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        new = []
        for w in ws:
            # (By class, not by name: a BatchNormalization named bn1 would otherwise get a
            # negative variance.)
            if isinstance(layer, tf.keras.layers.BatchNormalization) and w.ndim == 1:
                new.append(rng.uniform(0.5, 1.5, w.shape).astype(np.float32))
            elif w.ndim == 1:
                new.append(rng.normal(0, 0.2, w.shape).astype(np.float32))
            else:
                new.append(w)
        layer.set_weights(new)

    calib_shape = tuple(1 if d is None else d for d in input_shape)

    def representative():
        for _ in range(calib):
            yield [rng.uniform(-1, 1, calib_shape).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "float":
        return conv.convert()
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "dynamic":
        return conv.convert()
    conv.representative_dataset = representative
    if mode == "int16":
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        return conv.convert()
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if per_tensor:
        conv._experimental_disable_per_channel = True
    if int8_io:
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def cached(
    name: str, build: Callable, input_shape: tuple[int, ...], *, depends: str = "", **kw
) -> bytes:
    """The converted model, from the cache when its recipe is unchanged. The recipe is the
    build function's source, the input shape and the converter options; ``depends`` adds
    whatever else the build reads (data from the package, say), so that a change there
    converts again rather than testing a stale model."""
    recipe = (
        RECIPE_VERSION
        + inspect.getsource(build)
        + repr(input_shape)
        + repr(sorted(kw.items()))
        + depends
    )
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    path = CACHE / f"{name}-{key}.tflite"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        data = convert(build, input_shape, **kw)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # parallel workers may build it too
        tmp.write_bytes(data)
        tmp.replace(path)
    return path.read_bytes()


def _smile_like(tf, x):
    L = tf.keras.layers
    x = L.Conv2D(8, 5, strides=2, padding="same", activation="relu")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.BatchNormalization()(x)
    x = L.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Flatten()(x)
    x = L.Dropout(0.3)(x)
    return L.Dense(1, activation="sigmoid")(x)


def build_smile_like() -> bytes:
    """64x64x1 -> conv 5x5/2 -> pool -> batch norm -> conv -> pool -> conv -> pool ->
    flatten -> dropout -> dense -> sigmoid."""
    return cached("smile_like", _smile_like, (1, 64, 64, 1))


def _mobilenet_block(tf, x):
    L = tf.keras.layers
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu6")(x)
    y = L.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    y = L.Conv2D(16, 1, activation="relu6")(y)
    x = L.Add()([x, y])
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(3)(x)
    return L.Softmax()(x)


def build_mobilenet_block() -> bytes:
    """Depthwise + pointwise conv, residual add, global average pool, softmax."""
    return cached("mobilenet_block", _mobilenet_block, (1, 32, 32, 3))


def _kernel_shapes(tf, x):
    L = tf.keras.layers
    x = L.Conv2D(7, 3, strides=2, padding="same", activation="relu")(x)  # 1-channel first
    x = L.DepthwiseConv2D(3, padding="same", activation="relu6")(x)  # 3x3, stride 1
    y = L.Conv2D(7, 1, activation="relu")(x)  # pointwise, odd channel count
    x = L.Add()([x, y])  # residual
    x = L.DepthwiseConv2D(3, strides=2, padding="same")(x)  # 3x3, stride 2
    x = L.Conv2D(12, 1)(x)
    x = L.MaxPooling2D(2, padding="same")(x)  # 12 channels: the 4-lane variant
    x = L.Conv2D(5, 3, activation="relu")(x)  # VALID, odd
    return L.Dense(3)(L.Flatten()(x))  # dense head


def build_kernel_shapes() -> bytes:
    """The shapes the specialised kernels are chosen for, in one small model: a 1-channel
    first conv, depthwise 3x3 at stride 1 and 2, pointwise 1x1, a residual ADD, odd
    channel counts, a 4-lane max pool and a dense head (20x20x1 input)."""
    return cached("kernel_shapes", _kernel_shapes, (1, 20, 20, 1))


def _depthwise_shapes(tf, x):
    L = tf.keras.layers
    # one channel, multiplier 8, the keyword model's 10x8 at stride 2: a convolution (tiled)
    x = L.DepthwiseConv2D((10, 8), strides=2, depth_multiplier=8, padding="same")(x)
    x = L.DepthwiseConv2D(5, padding="same")(x)  # 5x5: kxk, wide borders
    x = L.DepthwiseConv2D((7, 1), strides=(2, 1), padding="same", activation="relu")(x)  # Nx1
    x = L.DepthwiseConv2D(3, dilation_rate=2, padding="same")(x)  # dilated 3x3: kxk
    x = L.Conv2D(7, 1)(x)  # 7 channels: a group of 4 and 3 more
    x = L.DepthwiseConv2D((1, 5), strides=(1, 3), padding="same")(x)
    x = L.DepthwiseConv2D((2, 3), depth_multiplier=2)(x)  # multiplier 2 on 7 channels
    return L.Dense(3)(L.Flatten()(x))


def build_depthwise_shapes() -> bytes:
    """The depthwise shapes other than 3x3 in one small model (24x20x1 input): 10x8 at
    stride 2 with multiplier 8 on one channel, 5x5, 7x1 at stride (2, 1), 3x3 dilated by 2,
    1x5 at stride (1, 3) on 7 channels, 2x3 with multiplier 2, VALID; a dense head."""
    return cached("depthwise_shapes", _depthwise_shapes, (1, 24, 20, 1))


def with_last_op_as_int8_quantize(model: bytes, scale_factor: float, zero_point: int) -> bytes:
    """Rewrite a model's last (elementwise, int8) op into an int8 -> int8 QUANTIZE with a
    new output quantization: Keras never emits one, LiteRT runs it."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.QUANTIZE
    code.version = 1
    m.operatorCodes.append(code)
    sg = m.subgraphs[0]
    last = sg.operators[-1]
    last.opcodeIndex = len(m.operatorCodes) - 1
    last.builtinOptionsType, last.builtinOptions = 0, None
    q = sg.tensors[last.outputs[0]].quantization
    q.scale = [float(np.float32(q.scale[0] * scale_factor))]
    q.zeroPoint = [zero_point]
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _edge_ops(tf, x):
    L = tf.keras.layers
    x = L.Conv2D(6, 3)(L.ZeroPadding2D(((1, 2), (0, 1)))(x))  # PAD
    a = L.AveragePooling2D(2, padding="same")(x)  # AVERAGE_POOL_2D
    # CONCATENATION has no fused activation, so these ReLUs stay standalone ops
    r = L.ReLU()(L.Concatenate()([L.Conv2D(4, 1)(a), L.Conv2D(2, 3, padding="same")(a)]))
    r = L.ReLU(max_value=6.0)(L.Concatenate()([r, L.Conv2D(3, 1)(a)]))
    return L.ReLU()(L.Concatenate()([r, L.Conv2D(2, 1)(a)]))  # becomes a QUANTIZE


def build_edge_ops() -> bytes:
    """The ops the bigger models lack, in one small model: PAD, AVERAGE_POOL_2D,
    CONCATENATION, standalone RELU and RELU6, and an int8 -> int8 QUANTIZE (the last RELU
    rewritten), 9x7x3 input."""
    model = cached("edge_ops", _edge_ops, (1, 9, 7, 3))
    return with_last_op_as_int8_quantize(model, 1.3, -7)


# ---- benchmark models: the shapes of issue 10's yardstick models, at random weights ----


def _conv_bn(L, x, filters: int, kernel, strides=1, act: str | None = "relu6", padding="same"):
    """Conv (no bias) + batch norm (+ activation): the converter folds the batch norm."""
    x = L.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False)(x)
    x = L.BatchNormalization()(x)
    return L.Activation(act)(x) if act else x


def _dw_bn(L, x, strides=1, act: str | None = "relu6"):
    x = L.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    return L.Activation(act)(x) if act else x


def _person(tf, x):
    L = tf.keras.layers
    x = _conv_bn(L, x, 8, 3, strides=2)
    # MobileNetV1 at width 0.25: (pointwise filters, depthwise stride) per block
    blocks = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)]
    blocks += [(128, 1)] * 5 + [(256, 2), (256, 1)]
    for filters, stride in blocks:
        x = _dw_bn(L, x, strides=stride)
        x = _conv_bn(L, x, filters, 1)
    x = L.AveragePooling2D(3)(x)
    x = L.Conv2D(2, 1)(x)
    x = L.Reshape((2,))(x)
    return L.Softmax()(x)


def build_person() -> bytes:
    """MobileNetV1-0.25 person detector, 96x96x1 -> 2 classes (7.16 M MACs): 3x3/2 first
    conv, 13 depthwise 3x3 (stride 1 and 2) + pointwise blocks, batch norms folded, ReLU6,
    3x3 average pool, 1x1 conv head, softmax."""
    return cached("person", _person, (1, 96, 96, 1))


def _xception(tf, x):
    L = tf.keras.layers
    x = _conv_bn(L, x, 8, 3, act="relu", padding="valid")
    x = _conv_bn(L, x, 8, 3, act="relu", padding="valid")
    for filters in (16, 32, 64, 128):
        r = _conv_bn(L, x, filters, 1, strides=2, act=None)
        x = L.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x)
        x = L.Activation("relu")(L.BatchNormalization()(x))
        x = L.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x)
        x = L.BatchNormalization()(x)
        x = L.MaxPooling2D(3, strides=2, padding="same")(x)
        x = L.Add()([x, r])
    x = L.Conv2D(7, 3, padding="same")(x)
    x = L.GlobalAveragePooling2D()(x)
    return L.Softmax()(x)


def build_xception() -> bytes:
    """mini-Xception, 64x64x1 -> 7 classes (10.2 M MACs): two VALID 3x3 convs, four residual
    modules (separable 3x3 convs with batch norm, 3x3/2 max pool, 1x1/2 conv shortcut,
    ADD), a 3x3 conv to the classes, global average pool (MEAN), softmax."""
    return cached("xception", _xception, (1, 64, 64, 1))


def _dscnn(tf, x):
    L = tf.keras.layers
    x = _conv_bn(L, x, 16, (10, 4), strides=2, act="relu")
    for _ in range(5):
        x = _dw_bn(L, x, act="relu")
        x = _conv_bn(L, x, 16, 1, act="relu")
    x = L.AveragePooling2D((25, 5))(x)
    x = L.Flatten()(x)
    x = L.Dense(12)(x)
    return L.Softmax()(x)


def build_dscnn() -> bytes:
    """DS-CNN keyword spotter, 49x10x1 MFCCs -> 12 classes (0.33 M MACs): a 10x4/2 conv,
    five depthwise 3x3 + pointwise blocks, average pool over the map, dense, softmax."""
    return cached("dscnn", _dscnn, (1, 49, 10, 1))


def _keyword(tf, x):
    L = tf.keras.layers
    x = L.DepthwiseConv2D(
        (10, 8), strides=2, depth_multiplier=8, padding="same", activation="relu"
    )(x)
    x = L.Flatten()(x)
    x = L.Dense(4)(x)
    return L.Softmax()(x)


def build_keyword() -> bytes:
    """TFLite Micro's micro_speech keyword model, 49x40x1 spectrogram -> 4 classes (336,000
    MACs): its one convolution is a DEPTHWISE_CONV_2D on one channel, 10x8, stride 2,
    multiplier 8 (as older converters wrote a 1-channel Conv2D), then a dense layer on the
    flattened 25x20x8 map and softmax."""
    return cached("keyword", _keyword, (1, 49, 40, 1))


def _sww(tf, x):
    L = tf.keras.layers
    x = _conv_bn(L, x, 24, (3, 3), strides=(2, 1), act="relu")  # 25x10x24
    # 1-D depthwise kernels along time (N x 1) and along frequency (1 x N), pointwise mixes
    for kernel, stride, filters in (((5, 1), 1, 32), ((1, 5), 1, 32), ((7, 1), 2, 48)):
        x = L.DepthwiseConv2D(kernel, strides=(stride, 1), padding="same", use_bias=False)(x)
        x = L.Activation("relu")(L.BatchNormalization()(x))
        x = _conv_bn(L, x, filters, 1, act="relu")
    x = L.DepthwiseConv2D((5, 1), padding="valid", use_bias=False)(x)  # 13 -> 9 steps
    x = L.Activation("relu")(L.BatchNormalization()(x))
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(3)(x)
    return L.Softmax()(x)


def build_sww() -> bytes:
    """A streaming-wake-word-like net, 49x10x1 features -> 3 classes: a 3x3 conv at stride
    (2, 1), then depthwise layers with 1-D kernels (5x1, 1x5, 7x1 at stride (2, 1), a VALID
    5x1), each but the last followed by a pointwise conv; global average pool, dense,
    softmax."""
    return cached("sww", _sww, (1, 49, 10, 1))


def random_chain_layers(seed: int) -> tuple[tuple[int, int, int], list[tuple]]:
    """A seeded random chain of the layers the DSP kernels are written out for: the input
    shape (h, w, c) and, per layer, ("conv", filters, kernel, stride, padding, activation)
    or ("dw", stride, activation), depthwise 3x3 with SAME padding. Channel counts are odd
    or multiples of 4, kernels 1, 3 and 5, strides 1 and 2, SAME and VALID, so that odd and
    even tap group counts, an odd last pixel or channel, the pointwise pair widening and
    depthwise border windows all occur; the map stays at least 3 wide."""
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(11, 21)), int(rng.integers(9, 17))
    c = int(rng.choice([1, 3, 4, 8]))
    shape = (h, w, c)
    acts = ["relu", "relu6", None]
    layers: list[tuple] = []
    for i in range(6):
        act = acts[int(rng.integers(0, 3))]
        stride = int(rng.integers(1, 3)) if min(h, w) >= 8 else 1
        if i % 2 == 1:
            layers.append(("dw", stride, act))
            h, w = -(-h // stride), -(-w // stride)
            continue
        filters = int(rng.choice([4, 5, 7, 8, 12, 16, 20]))
        kernel = 1 if i == 2 else min(int(rng.choice([1, 3, 5])), h, w)
        padding = str(rng.choice(["same", "valid"])) if min(h, w) - kernel >= 3 else "same"
        layers.append(("conv", filters, kernel, stride, padding, act))
        if padding == "same":
            h, w = -(-h // stride), -(-w // stride)
        else:
            h, w = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    return shape, layers


def build_random_chain(seed: int) -> bytes:
    """random_chain_layers(seed) as a full-int8 model, with a dense head."""
    shape, layers = random_chain_layers(seed)

    def _random_chain(tf, x):
        L = tf.keras.layers
        for spec in layers:
            if spec[0] == "dw":
                x = L.DepthwiseConv2D(3, strides=spec[1], padding="same", activation=spec[2])(x)
            else:
                _, filters, kernel, stride, padding, act = spec
                x = L.Conv2D(filters, kernel, strides=stride, padding=padding, activation=act)(x)
        return L.Dense(3)(L.Flatten()(x))

    return cached(f"random_chain{seed}", _random_chain, (1, *shape), depends=repr((seed, layers)))
