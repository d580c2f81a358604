"""The speed corpus (issue 29): seeded random layer stacks and MLPerf-Tiny-like
architectures, built with Keras at random weights and converted to full int8 (int8 input
and output, random representative data) by tests/models.py's convert(), cached like the
test models (tests/.model_cache), never committed. bench_device.py runs them by name, or
all with `--models corpus`.

The random stacks cover kernels 1-10 (non-square ones too), strides 1-3, depth multipliers
1-8, dilation 2 (depthwise), channels 1-64 odd and even, inputs 8x8 to 96x96, first layers
on one channel, per-tensor and per-channel weights, Conv2D, DepthwiseConv2D, pooling, ADD
and Dense, each model under MAC_BUDGET.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEED = 29
RANDOM_MODELS = 10
MAC_BUDGET = 3_000_000  # per random model: a few seconds on the emulator
ACTS = ("relu", "relu6", None)


def test_models():
    """tests/models.py (convert, cached and its builders), imported as bench_device does."""
    sys.path.insert(0, str(ROOT / "tests"))
    import models

    return models


def _same(n: int, stride: int) -> int:
    return -(-n // stride)


def random_layers(seed: int) -> tuple[tuple[int, int, int], list[tuple], bool]:
    """A seeded random stack: the input shape (h, w, c), the layers, and whether its weights
    are per-tensor. Layers: ("conv", filters, kernel, strides, padding, act), ("dw", kernel,
    stride, multiplier, dilation, padding, act), ("res", act) (a 3x3 conv keeping the shape,
    added to its input), ("pool", "max"|"avg", size), then the head ("dense", hidden, units)
    on the flattened or ("gap", units) on the globally averaged map."""
    rng = np.random.default_rng([SEED, seed])
    h, w = (int(v) for v in rng.integers(8, 97, 2))
    c = 1 if rng.random() < 0.5 else int(rng.integers(2, 9))
    shape, per_tensor = (h, w, c), bool(rng.random() < 0.4)
    layers: list[tuple] = []
    macs = 0
    for i in range(int(rng.integers(3, 7))):
        for _ in range(20):  # draw until the layer fits the budget
            kind = "conv" if i == 0 else str(rng.choice(["conv", "dw", "dw", "res", "pool"]))
            kh, kw = (int(v) for v in rng.integers(1, 11, 2))
            if rng.random() < 0.4:
                kw = kh
            kh, kw = min(kh, h), min(kw, w)
            stride = int(rng.integers(1, 4)) if min(h, w) >= 12 else 1
            strides = (stride, 1) if stride > 1 and rng.random() < 0.25 else (stride, stride)
            act = ACTS[int(rng.integers(0, 3))]
            if kind == "pool":
                if min(h, w) < 4:
                    continue
                size = int(rng.choice([2, 3]))
                spec, oc, m = ("pool", str(rng.choice(["max", "avg"])), size), c, 0
                oh, ow = (h - size) // size + 1, (w - size) // size + 1
            elif kind == "res":
                spec, (oh, ow, oc) = ("res", act), (h, w, c)
                m = h * w * c * c * 9
            elif kind == "conv":
                filters = int(rng.integers(1, 65))
                padding = "valid" if rng.random() < 0.3 and h >= kh + 2 and w >= kw + 2 else "same"
                if padding == "same":
                    oh, ow = _same(h, strides[0]), _same(w, strides[1])
                else:
                    oh, ow = (h - kh) // strides[0] + 1, (w - kw) // strides[1] + 1
                spec, oc = ("conv", filters, (kh, kw), strides, padding, act), filters
                m = oh * ow * oc * kh * kw * c
            else:
                mult = int(rng.integers(1, min(8, 64 // c) + 1)) if c <= 32 else 1
                dilation = 2 if strides == (1, 1) and rng.random() < 0.3 else 1
                eh, ew = (kh - 1) * dilation + 1, (kw - 1) * dilation + 1
                padding = "valid" if rng.random() < 0.3 and h >= eh + 2 and w >= ew + 2 else "same"
                if padding == "same":
                    oh, ow = _same(h, strides[0]), _same(w, strides[1])
                else:
                    oh, ow = (h - eh) // strides[0] + 1, (w - ew) // strides[1] + 1
                spec = ("dw", (kh, kw), strides, mult, dilation, padding, act)
                oc = c * mult
                m = oh * ow * oc * kh * kw
            if macs + m <= MAC_BUDGET and min(oh, ow) >= 1:
                layers.append(spec)
                macs += m
                h, w, c = oh, ow, oc
                break
    if h * w * c <= 4096 and rng.random() < 0.6:
        layers.append(("dense", int(rng.integers(0, 2)) * int(rng.integers(8, 65)), 10))
    else:
        layers.append(("gap", int(rng.integers(2, 13))))
    return shape, layers, per_tensor


def random_builder(layers: list[tuple]) -> Callable:
    def _random_stack(tf, x):
        L = tf.keras.layers
        for spec in layers:
            kind, *p = spec
            if kind == "conv":
                filters, kernel, strides, padding, act = p
                x = L.Conv2D(filters, kernel, strides=strides, padding=padding, activation=act)(x)
            elif kind == "dw":
                kernel, strides, mult, dilation, padding, act = p
                x = L.DepthwiseConv2D(
                    kernel,
                    strides=strides,
                    depth_multiplier=mult,
                    dilation_rate=dilation,
                    padding=padding,
                    activation=act,
                )(x)
            elif kind == "res":
                y = L.Conv2D(x.shape[-1], 3, padding="same", activation=p[0])(x)
                x = L.Add()([x, y])
            elif kind == "pool":
                pool = L.MaxPooling2D if p[0] == "max" else L.AveragePooling2D
                x = pool(p[1])(x)
            elif kind == "dense":
                x = L.Flatten()(x)
                if p[0]:
                    x = L.Dense(p[0], activation="relu")(x)
                x = L.Dense(p[1])(x)
            else:
                x = L.Dense(p[0])(L.GlobalAveragePooling2D()(x))
        return x

    return _random_stack


def build_random(seed: int) -> bytes:
    shape, layers, per_tensor = random_layers(seed)
    m = test_models()
    return m.cached(
        f"corpus_r{seed}",
        random_builder(layers),
        (1, *shape),
        depends=repr((SEED, seed, shape, layers)),
        per_tensor=per_tensor,
    )


# ---- MLPerf Tiny's architectures, at random weights ----


def _ds_cnn(tf, x):
    """MLPerf Tiny's keyword spotter: a 10x4/2 conv to 64 channels, four depthwise 3x3 +
    pointwise blocks at 64, average pool over the map, dense to 12 classes."""
    m, L = test_models(), tf.keras.layers
    x = m._conv_bn(L, x, 64, (10, 4), strides=2, act="relu")
    for _ in range(4):
        x = m._dw_bn(L, x, act="relu")
        x = m._conv_bn(L, x, 64, 1, act="relu")
    x = L.AveragePooling2D((25, 5))(x)
    return L.Softmax()(L.Dense(12)(L.Flatten()(x)))


def _resnet8(tf, x):
    """MLPerf Tiny's image classifier: a 3x3 conv to 16, three residual stacks (16, 32/2,
    64/2) of two 3x3 convs, a 1x1 strided shortcut where the shape changes, global average
    pool, dense to 10 classes."""
    m, L = test_models(), tf.keras.layers
    x = m._conv_bn(L, x, 16, 3, act="relu")
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = m._conv_bn(L, x, filters, 3, strides=stride, act="relu")
        y = m._conv_bn(L, y, filters, 3, act=None)
        if stride > 1:
            x = L.Conv2D(filters, 1, strides=stride)(x)
        x = L.Activation("relu")(L.Add()([x, y]))
    x = L.GlobalAveragePooling2D()(x)
    return L.Softmax()(L.Dense(10)(x))


def _autoencoder(tf, x):
    """MLPerf Tiny's anomaly detector: 640 -> 128 x4 -> 8 -> 128 x4 -> 640, dense layers
    with batch norm and ReLU, a linear output."""
    L = tf.keras.layers
    for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = L.Activation("relu")(L.BatchNormalization()(L.Dense(units)(x)))
    return L.Dense(640)(x)


def _cached(name: str, build: Callable, shape: tuple[int, ...]) -> Callable[[], bytes]:
    return lambda: test_models().cached(name, build, shape)


# name -> () -> .tflite bytes; `sww` is tests/models.py's streaming keyword model
MODELS: dict[str, Callable[[], bytes]] = {
    **{f"corpus_r{i}": (lambda i=i: build_random(i)) for i in range(RANDOM_MODELS)},
    "kws_dscnn": _cached("corpus_kws_dscnn", _ds_cnn, (1, 49, 10, 1)),
    "resnet8": _cached("corpus_resnet8", _resnet8, (1, 32, 32, 3)),
    # tests/models.py's person detector (MobileNetV1-0.25) on 3 channels, as in MLPerf Tiny
    "vww_mobilenet": lambda: test_models().cached(
        "corpus_vww", test_models()._person, (1, 96, 96, 3)
    ),
    "autoencoder": _cached("corpus_autoencoder", _autoencoder, (1, 640)),
    "sww": lambda: test_models().build_sww(),
}


def describe(seed: int) -> str:
    shape, layers, per_tensor = random_layers(seed)
    return f"{shape} {'per-tensor' if per_tensor else 'per-channel'}: {layers}"


if __name__ == "__main__":
    for i in range(RANDOM_MODELS):
        print(f"corpus_r{i}", describe(i))
