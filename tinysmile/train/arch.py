"""Model architectures (Keras) and their cost: MACs and parameters per layer.

Every builder takes the input shape (H, W, C) and a batch size. Training uses a free
batch (``None``); export rebuilds the same layers with a batch of 1 so that Flatten
lowers to one RESHAPE with a constant shape instead of SHAPE/STRIDED_SLICE/PACK, which
the C compiler does not (and need not) support.

Keras is imported lazily: ``tinysmile.train.arch`` is cheap to import for the cost
functions and names, and only ``build_model`` pulls in TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from tinysmile.errors import TinysmileError

ARCHS = ("alexnet", "reduced-alexnet", "embedded3")


def _conv_bn_relu(
    keras: Any, x: Any, filters: int, kernel: int, name: str, strides: int = 1
) -> Any:
    # Batch norm after every conv stands in for AlexNet's local response normalisation:
    # without it these deeper plain-ReLU stacks often die at the start of training (a
    # constant output, AUC 0.5). The converter folds each one into its CONV_2D.
    L = keras.layers
    x = L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=name)(x)
    x = L.BatchNormalization(name=f"{name}_bn")(x)
    return L.ReLU(name=f"{name}_relu")(x)


def _alexnet(keras: Any, x: Any) -> Any:
    # AlexNet's shape (11x11/4 conv, overlapping 3x3/2 pools, 5 convs, two wide dense
    # layers with dropout) at half its widths, sized for 64x64 face crops: a baseline for
    # accuracy, not something meant for a microcontroller.
    L = keras.layers
    x = _conv_bn_relu(keras, x, 48, 11, "conv1", strides=4)
    x = L.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = _conv_bn_relu(keras, x, 128, 5, "conv2")
    x = L.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    x = _conv_bn_relu(keras, x, 192, 3, "conv3")
    x = _conv_bn_relu(keras, x, 192, 3, "conv4")
    x = _conv_bn_relu(keras, x, 128, 3, "conv5")
    x = L.MaxPooling2D(3, strides=2, padding="same", name="pool5")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(512, activation="relu", name="fc6")(x)
    x = L.Dropout(0.5, name="drop6")(x)
    x = L.Dense(512, activation="relu", name="fc7")(x)
    x = L.Dropout(0.5, name="drop7")(x)
    return L.Dense(1, activation="sigmoid", name="output")(x)


def _reduced_alexnet(keras: Any, x: Any) -> Any:
    # The same five-conv, two-dense layout with far fewer channels and a gentler first
    # stride: about a quarter of the baseline's MACs.
    L = keras.layers
    x = _conv_bn_relu(keras, x, 24, 7, "conv1", strides=2)
    x = L.MaxPooling2D(2, name="pool1")(x)
    x = _conv_bn_relu(keras, x, 32, 3, "conv2")
    x = L.MaxPooling2D(2, name="pool2")(x)
    x = _conv_bn_relu(keras, x, 48, 3, "conv3")
    x = _conv_bn_relu(keras, x, 48, 3, "conv4")
    x = _conv_bn_relu(keras, x, 32, 3, "conv5")
    x = L.MaxPooling2D(2, name="pool5")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(64, activation="relu", name="fc6")(x)
    x = L.Dropout(0.5, name="drop6")(x)
    return L.Dense(1, activation="sigmoid", name="output")(x)


def _embedded3(keras: Any, x: Any) -> Any:
    # Three convs, three max-pools. The first conv has a large stride so the expensive
    # full-resolution layer is cheap; the one BatchNormalization sits right after it,
    # before the ReLU and with no conv bias, so the converter folds it into CONV_2D and
    # the int8 graph has no MUL/ADD left from it.
    L = keras.layers
    x = L.Conv2D(8, 5, strides=2, padding="same", use_bias=False, name="conv1")(x)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.ReLU(name="relu1")(x)
    x = L.MaxPooling2D(2, name="pool1")(x)
    x = L.Conv2D(24, 3, padding="same", activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(2, name="pool2")(x)
    x = L.Conv2D(32, 3, padding="same", activation="relu", name="conv3")(x)
    x = L.MaxPooling2D(2, name="pool3")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dropout(0.4, name="dropout")(x)
    return L.Dense(1, activation="sigmoid", name="output")(x)


_BUILDERS: dict[str, Callable[[Any, Any], Any]] = {
    "alexnet": _alexnet,
    "reduced-alexnet": _reduced_alexnet,
    "embedded3": _embedded3,
}


def check_arch(name: str) -> str:
    if name not in _BUILDERS:
        raise TinysmileError(f"unknown architecture {name!r} (choose from {', '.join(ARCHS)})")
    return name


def build_model(arch: str, input_shape: tuple[int, int, int], batch_size: int | None = None) -> Any:
    """A fresh Keras model; ``batch_size=1`` is the export shape."""
    import keras

    check_arch(arch)
    inputs = keras.Input(shape=tuple(input_shape), batch_size=batch_size, name="image")
    outputs = _BUILDERS[arch](keras, inputs)
    return keras.Model(inputs, outputs, name=arch.replace("-", "_"))


def export_model(model: Any) -> Any:
    """A batch-1 copy of a trained model (same layers, same weights), for conversion."""
    import keras

    if model.inputs[0].shape[0] == 1:
        return model
    config = model.get_config()
    # The functional config stores the Input layer's batch shape; pinning it to 1 keeps
    # every layer identical while making all downstream shapes static.
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            cfg = layer["config"]
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            key = "batch_shape" if "batch_shape" in cfg else "batch_input_shape"
            cfg[key] = [1, *list(shape)[1:]]
    fixed = keras.Model.from_config(config)
    fixed.set_weights(model.get_weights())
    return fixed


@dataclass
class LayerCost:
    name: str
    kind: str
    output_shape: list[int]
    macs: int
    params: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def layer_costs(model: Any) -> list[LayerCost]:
    """MACs and parameters of each layer, computed from the layer's shapes.

    MACs are multiply-accumulates of one inference (batch 1). Pooling, activations and
    reshapes count zero MACs; BatchNormalization counts zero because it is folded into
    the preceding convolution at export (its parameters are still listed, as Keras
    holds them).
    """
    costs: list[LayerCost] = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        out_shape = [int(d) for d in layer.output.shape[1:]]
        in_shape = [int(d) for d in layer.input.shape[1:]]
        macs = 0
        if kind == "Conv2D":
            kh, kw = layer.kernel_size
            groups = getattr(layer, "groups", 1)
            macs = _prod(out_shape) * kh * kw * (in_shape[-1] // groups)
        elif kind == "DepthwiseConv2D":
            kh, kw = layer.kernel_size
            macs = _prod(out_shape) * kh * kw
        elif kind == "SeparableConv2D":
            kh, kw = layer.kernel_size
            oh, ow = out_shape[0], out_shape[1]
            mid = in_shape[-1] * layer.depth_multiplier
            macs = oh * ow * mid * kh * kw + oh * ow * mid * out_shape[-1]
        elif kind == "Dense":
            macs = _prod(in_shape) * out_shape[-1]
        costs.append(LayerCost(layer.name, kind, out_shape, int(macs), int(layer.count_params())))
    return costs


def total_macs(costs: list[LayerCost]) -> int:
    return sum(c.macs for c in costs)


def total_params(costs: list[LayerCost]) -> int:
    return sum(c.params for c in costs)


def _prod(xs: list[int]) -> int:
    n = 1
    for x in xs:
        n *= x
    return n
