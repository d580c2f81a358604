"""Every supported op, and the attributes that matter, bit-exact three ways: generated C
(built with ASan/UBSan), the op's numpy twin, and LiteRT's reference kernels."""

from __future__ import annotations

import pytest
from models import cached
from parity import assert_parity

pytestmark = pytest.mark.slow


def _conv_same_s2(tf, x):
    return tf.keras.layers.Conv2D(6, 5, strides=2, padding="same", activation="relu")(x)


def _conv_valid_s1_relu6(tf, x):
    return tf.keras.layers.Conv2D(5, 3, padding="valid", activation="relu6")(x)


def _conv_rect_per_tensor(tf, x):
    return tf.keras.layers.Conv2D(4, (3, 2), strides=(2, 1), padding="same")(x)


def _depthwise_m1_same(tf, x):
    return tf.keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)


def _depthwise_m2_valid_s2(tf, x):
    return tf.keras.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="valid")(x)


def _depthwise_dilated_same(tf, x):
    return tf.keras.layers.DepthwiseConv2D(3, dilation_rate=2, padding="same")(x)


def _depthwise_dilated_rect_valid(tf, x):
    L = tf.keras.layers
    return L.DepthwiseConv2D((5, 2), dilation_rate=(2, 3), activation="relu6")(x)


def _dense_relu(tf, x):
    return tf.keras.layers.Dense(7, activation="relu")(x)


def _dense_per_tensor(tf, x):
    return tf.keras.layers.Dense(9)(x)


def _maxpool_same_s2(tf, x):
    return tf.keras.layers.MaxPooling2D(3, strides=2, padding="same")(x)


def _maxpool_valid(tf, x):
    return tf.keras.layers.MaxPooling2D(2)(x)


def _avgpool_same_odd(tf, x):
    return tf.keras.layers.AveragePooling2D(3, strides=2, padding="same")(x)


def _avgpool_valid(tf, x):
    return tf.keras.layers.AveragePooling2D(2)(x)


def _add_two_branches(tf, x):
    L = tf.keras.layers
    return L.Add()([L.Conv2D(4, 1)(x), L.Conv2D(4, 3, padding="same")(x)])


def _mul_two_branches(tf, x):
    L = tf.keras.layers
    return L.Multiply()([L.Conv2D(4, 1)(x), L.Conv2D(4, 3, padding="same")(x)])


def _batchnorm_after_pool(tf, x):
    # a batch norm the converter cannot fold: MUL and ADD with broadcast constants
    L = tf.keras.layers
    x = L.Conv2D(4, 3, activation="relu")(x)
    return L.BatchNormalization()(L.MaxPooling2D(2)(x))


def _pad_asymmetric(tf, x):
    L = tf.keras.layers
    return L.Conv2D(3, 3)(L.ZeroPadding2D(((1, 2), (0, 1)))(x))


def _concat_channels(tf, x):
    L = tf.keras.layers
    return L.Concatenate()([L.Conv2D(4, 1)(x), L.Conv2D(2, 3, padding="same")(x)])


def _relu6_standalone(tf, x):
    L = tf.keras.layers
    c = L.Concatenate()([L.Conv2D(4, 1)(x), L.Conv2D(2, 3, padding="same")(x)])
    return L.ReLU(max_value=6.0)(c)


def _relu_standalone(tf, x):
    L = tf.keras.layers
    c = L.Concatenate()([L.Conv2D(4, 1)(x), L.Conv2D(2, 3, padding="same")(x)])
    return L.ReLU()(c)


def _flatten_dense(tf, x):
    L = tf.keras.layers
    return L.Dense(5)(L.Flatten()(L.Conv2D(3, 3)(x)))


CASES = {
    "conv_same_s2_odd": (_conv_same_s2, (1, 9, 11, 3), {}, {"CONV_2D"}),
    "conv_valid_s1_relu6": (_conv_valid_s1_relu6, (1, 7, 9, 3), {}, {"CONV_2D"}),
    "conv_per_tensor": (_conv_rect_per_tensor, (1, 8, 8, 2), {"per_tensor": True}, {"CONV_2D"}),
    "depthwise_m1_same": (_depthwise_m1_same, (1, 9, 9, 4), {}, {"DEPTHWISE_CONV_2D"}),
    "depthwise_m2_valid_s2": (_depthwise_m2_valid_s2, (1, 10, 7, 3), {}, {"DEPTHWISE_CONV_2D"}),
    "depthwise_dilated_same": (_depthwise_dilated_same, (1, 11, 9, 8), {}, {"DEPTHWISE_CONV_2D"}),
    "depthwise_dilated_rect_valid": (
        _depthwise_dilated_rect_valid,
        (1, 13, 9, 5),
        {},
        {"DEPTHWISE_CONV_2D"},
    ),
    "dense_relu": (_dense_relu, (1, 20), {}, {"FULLY_CONNECTED"}),
    "dense_per_tensor": (_dense_per_tensor, (1, 33), {"per_tensor": True}, {"FULLY_CONNECTED"}),
    "maxpool_same_s2": (_maxpool_same_s2, (1, 9, 9, 3), {}, {"MAX_POOL_2D"}),
    "maxpool_valid": (_maxpool_valid, (1, 8, 7, 2), {}, {"MAX_POOL_2D"}),
    "avgpool_same_odd": (_avgpool_same_odd, (1, 9, 7, 3), {}, {"AVERAGE_POOL_2D"}),
    "avgpool_valid": (_avgpool_valid, (1, 8, 8, 2), {}, {"AVERAGE_POOL_2D"}),
    "add": (_add_two_branches, (1, 6, 6, 4), {}, {"ADD"}),
    "mul": (_mul_two_branches, (1, 6, 6, 4), {}, {"MUL"}),
    "batchnorm_broadcast": (_batchnorm_after_pool, (1, 8, 8, 3), {}, {"MUL", "ADD"}),
    "pad": (_pad_asymmetric, (1, 5, 5, 2), {}, {"PAD"}),
    "concat": (_concat_channels, (1, 6, 6, 3), {}, {"CONCATENATION"}),
    "relu6": (_relu6_standalone, (1, 6, 6, 3), {}, {"RELU6"}),
    "relu": (_relu_standalone, (1, 6, 6, 3), {}, {"RELU"}),
    "reshape": (_flatten_dense, (1, 6, 6, 2), {}, {"RESHAPE", "FULLY_CONNECTED"}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_parity(name, tmp_path):
    build, shape, kw, must_have = CASES[name]
    model = cached(name, build, shape, **kw)
    report = assert_parity(model, tmp_path, n=300)
    assert must_have <= set(report["ops"]), report["ops"]


@pytest.mark.parametrize("scale_factor,zero_point", [(1.7, -20), (0.45, 3)])
def test_int8_quantize_parity(scale_factor, zero_point, tmp_path):
    from models import with_last_op_as_int8_quantize

    build, shape, kw, _ = CASES["relu"]
    model = with_last_op_as_int8_quantize(
        cached("relu", build, shape, **kw), scale_factor, zero_point
    )
    report = assert_parity(model, tmp_path, n=300)
    assert "QUANTIZE" in report["ops"]
