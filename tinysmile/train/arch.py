"""Model architectures as data, their Keras models, their cost and their reductions.

An architecture is a JSON document: an input size and a flat stack of layers
(``conv``, ``depthwise_conv``, ``batch_norm``, ``relu``, ``max_pool``, ``flatten``,
``dropout``, ``dense``), each with its Keras name and settings. A depthwise conv followed
by a 1x1 conv is a depthwise-separable conv (MobileNet's), which one of the reductions
makes of a conv. The three built-in architectures are such files
(``tinysmile/train/archs/*.json``); ``--arch`` takes one of their names or a path.

Every builder takes a batch size. Training uses a free batch (``None``); export rebuilds
the same layers with a batch of 1 so that Flatten lowers to one RESHAPE with a constant
shape instead of SHAPE/STRIDED_SLICE/PACK, which the C compiler does not (and need not)
support.

Shapes and MACs are also computed from the data alone (no TensorFlow), which is what the
search uses to order the reductions it generates. Keras is imported lazily: only
``build_model`` pulls in TensorFlow.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tinysmile.errors import TinysmileError

ARCHS = ("alexnet", "reduced-alexnet", "embedded3", "attitude48")
ARCH_DIR = Path(__file__).resolve().parent / "archs"

# type -> (required fields, defaults). Defaults are written into the normalised form, so
# two descriptions that build the same model have the same key.
_FIELDS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "conv": (
        ("filters", "kernel"),
        {"stride": 1, "padding": "same", "bias": True, "activation": None},
    ),
    "depthwise_conv": (
        ("kernel",),
        {"stride": 1, "padding": "same", "bias": False, "activation": None},
    ),
    "batch_norm": ((), {}),
    "relu": ((), {}),
    "max_pool": (("size",), {"stride": None, "padding": "valid"}),
    "flatten": ((), {}),
    "dropout": (("rate",), {}),
    "dense": (("units",), {"activation": None}),
}
_ACTIVATIONS = (None, "relu", "sigmoid", "softmax")
_SPATIAL = ("conv", "depthwise_conv", "batch_norm", "max_pool")
_INT_FIELDS = ("filters", "kernel", "stride", "size", "units")
# The smallest input side a reduction may produce: below it a face is a few pixels.
MIN_INPUT = 16
Arch = dict[str, Any]


def _bad(where: str, msg: str) -> TinysmileError:
    return TinysmileError(f"{where}: {msg}")


def normalise(doc: Any, where: str = "architecture") -> Arch:
    """A checked copy of an architecture document with every default filled in."""
    if not isinstance(doc, dict):
        raise _bad(where, "an architecture is a JSON object with 'input' and 'layers'")
    inp = doc.get("input")
    if not isinstance(inp, dict) or not all(
        isinstance(inp.get(k), int) and inp[k] > 0 for k in ("height", "width")
    ):
        raise _bad(where, "'input' needs positive integer 'height' and 'width'")
    layers = doc.get("layers")
    if not isinstance(layers, list) or not layers:
        raise _bad(where, "'layers' must be a non-empty list")
    out_layers = []
    names: set[str] = set()
    for i, layer in enumerate(layers):
        at = f"{where}: layer {i}"
        if not isinstance(layer, dict) or layer.get("type") not in _FIELDS:
            raise TinysmileError(f"{at}: 'type' must be one of {', '.join(_FIELDS)}")
        kind = layer["type"]
        required, defaults = _FIELDS[kind]
        name = layer.get("name", f"{kind}{i}")
        if not isinstance(name, str) or not name or name in names:
            raise TinysmileError(f"{at}: 'name' must be a unique non-empty string")
        names.add(name)
        unknown = set(layer) - {"type", "name", *required, *defaults}
        if unknown:
            raise TinysmileError(f"{at} ({kind}): unknown field(s) {', '.join(sorted(unknown))}")
        missing = [k for k in required if k not in layer]
        if missing:
            raise TinysmileError(f"{at} ({kind}): missing {', '.join(missing)}")
        norm = {"type": kind, "name": name, **defaults}
        norm.update({k: layer[k] for k in layer if k not in ("type", "name")})
        if kind == "max_pool" and norm["stride"] is None:
            norm["stride"] = norm["size"]
        for k in _INT_FIELDS:
            if k in norm and not (isinstance(norm[k], int) and norm[k] > 0):
                raise TinysmileError(f"{at} ({kind}): {k} must be a positive integer")
        if norm.get("padding", "same") not in ("same", "valid"):
            raise TinysmileError(f"{at} ({kind}): padding is 'same' or 'valid'")
        if norm.get("activation") not in _ACTIVATIONS:
            raise TinysmileError(f"{at} ({kind}): activation is relu, sigmoid, softmax or null")
        if norm.get("activation") == "softmax" and (kind != "dense" or i != len(layers) - 1):
            raise TinysmileError(f"{at} ({kind}): softmax is the last dense layer's only")
        if kind in ("conv", "depthwise_conv") and not isinstance(norm["bias"], bool):
            raise TinysmileError(f"{at} ({kind}): bias is true or false")
        if kind == "dropout" and not (
            isinstance(norm["rate"], (int, float)) and 0 <= norm["rate"] < 1
        ):
            raise TinysmileError(f"{at} (dropout): rate must be in [0, 1)")
        out_layers.append(norm)
    kinds = [layer["type"] for layer in out_layers]
    if "flatten" not in kinds or kinds.count("flatten") > 1:
        raise _bad(where, "exactly one flatten layer, between the convolutions and dense layers")
    flat = kinds.index("flatten")
    if any(k in _SPATIAL for k in kinds[flat:]) or "dense" in kinds[:flat]:
        raise _bad(
            where,
            "conv, depthwise_conv, batch_norm and max_pool come before flatten, dense after it",
        )
    last = out_layers[-1]
    binary = last["units"] == 1 and last["activation"] == "sigmoid"
    classes = last["units"] >= 2 and last["activation"] == "softmax"
    if last["type"] != "dense" or not (binary or classes):
        raise _bad(
            where,
            "the last layer must be a dense layer of 1 unit with a sigmoid (two classes) or"
            " of one unit per class with a softmax (three or more)",
        )
    name = doc.get("name", "custom")
    out: Arch = {"name": str(name), "input": {"height": inp["height"], "width": inp["width"]}}
    if doc.get("description"):
        out["description"] = str(doc["description"])
    out["layers"] = out_layers
    shapes(out, where)  # every feature map must keep at least one pixel
    return out


def load_arch(arch: str | Path | dict[str, Any]) -> Arch:
    """A built-in name, a JSON file, or a document; always returned normalised."""
    if isinstance(arch, dict):
        return normalise(arch)
    text = str(arch)
    if text in ARCHS:
        return normalise(json.loads((ARCH_DIR / f"{text}.json").read_text()), text)
    path = Path(text)
    if text.endswith(".json") or path.is_file():
        if not path.is_file():
            raise TinysmileError(f"{path}: no such architecture file")
        try:
            doc = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TinysmileError(f"{path}: not a JSON architecture ({exc})") from None
        return normalise(doc, str(path))
    raise TinysmileError(
        f"unknown architecture {text!r} (choose from {', '.join(ARCHS)}, or give a JSON file)"
    )


def check_arch(arch: str | Path | dict[str, Any]) -> Arch:
    return load_arch(arch)


def arch_key(arch: Arch) -> str:
    """The identity of an architecture: a hash of its input and layers (not its name or
    description), so the same model reached along two reduction paths is one trial."""
    body = {"input": arch["input"], "layers": arch["layers"]}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def with_input(arch: Arch, height: int, width: int) -> Arch:
    out = copy.deepcopy(arch)
    out["input"] = {"height": int(height), "width": int(width)}
    return normalise(out, out.get("name", "architecture"))


def num_classes(arch: Arch) -> int:
    """How many classes the architecture tells apart (2 for a 1-unit sigmoid)."""
    units = int(arch["layers"][-1]["units"])
    return 2 if units == 1 else units


def with_classes(arch: Arch, classes: int) -> Arch:
    """The architecture with its head for ``classes`` classes: two as one sigmoid unit (the
    smile models), more as a softmax over one unit each (attitude, emotions); the layers
    below the head are unchanged, so a run of one task can start another's training."""
    if classes < 2:
        raise TinysmileError(f"a classifier needs at least two classes, got {classes}")
    out = copy.deepcopy(arch)
    head = out["layers"][-1]
    head["units"], head["activation"] = (1, "sigmoid") if classes == 2 else (classes, "softmax")
    return normalise(out, out.get("name", "architecture"))


def _conv_out(n: int, k: int, s: int, padding: str) -> int:
    return math.ceil(n / s) if padding == "same" else (n - k) // s + 1


def shapes(arch: Arch, where: str = "architecture") -> list[tuple[list[int], int]]:
    """(output shape without batch, MACs) per layer, from the data alone."""
    h, w, c = arch["input"]["height"], arch["input"]["width"], 1
    flat: int | None = None
    out = []
    for layer in arch["layers"]:
        kind, macs = layer["type"], 0
        if kind in ("conv", "depthwise_conv"):
            k, s = layer["kernel"], layer["stride"]
            h, w = _conv_out(h, k, s, layer["padding"]), _conv_out(w, k, s, layer["padding"])
            # A depthwise conv: one k x k filter per input channel.
            out_c = layer["filters"] if kind == "conv" else c
            macs = h * w * k * k * (out_c * c if kind == "conv" else c)
            c = out_c
        elif kind == "max_pool":
            k, s = layer["size"], layer["stride"]
            h, w = _conv_out(h, k, s, layer["padding"]), _conv_out(w, k, s, layer["padding"])
        elif kind == "flatten":
            flat = h * w * c
        elif kind == "dense":
            assert flat is not None
            macs = flat * layer["units"]
            flat = layer["units"]
        if h < 1 or w < 1:
            raise _bad(where, f"layer {layer['name']} leaves no pixels ({h}x{w})")
        out.append(([h, w, c] if flat is None else [flat], macs))
    return out


def arch_macs(arch: Arch) -> int:
    return sum(m for _, m in shapes(arch))


def _keras_layer(keras: Any, layer: dict[str, Any]) -> Any:
    L = keras.layers
    kind, name = layer["type"], layer["name"]
    if kind in ("conv", "depthwise_conv"):
        common = {
            "strides": layer["stride"],
            "padding": layer["padding"],
            "use_bias": layer["bias"],
            "activation": layer["activation"],
            "name": name,
        }
        if kind == "conv":
            return L.Conv2D(layer["filters"], layer["kernel"], **common)
        return L.DepthwiseConv2D(layer["kernel"], **common)
    if kind == "batch_norm":
        return L.BatchNormalization(name=name)
    if kind == "relu":
        return L.ReLU(name=name)
    if kind == "max_pool":
        return L.MaxPooling2D(
            layer["size"], strides=layer["stride"], padding=layer["padding"], name=name
        )
    if kind == "flatten":
        return L.Flatten(name=name)
    if kind == "dropout":
        return L.Dropout(layer["rate"], name=name)
    return L.Dense(layer["units"], activation=layer["activation"], name=name)


def build_model(
    arch: str | Path | dict[str, Any],
    input_shape: tuple[int, int, int] | None = None,
    batch_size: int | None = None,
) -> Any:
    """A fresh Keras model; ``batch_size=1`` is the export shape. ``input_shape`` (H, W, 1)
    overrides the architecture's input size."""
    import keras

    spec = load_arch(arch)
    if input_shape is not None:
        spec = with_input(spec, input_shape[0], input_shape[1])
    shape = (spec["input"]["height"], spec["input"]["width"], 1)
    inputs = keras.Input(shape=shape, batch_size=batch_size, name="image")
    x = inputs
    for layer in spec["layers"]:
        x = _keras_layer(keras, layer)(x)
    return keras.Model(inputs, x, name=spec["name"].replace("-", "_"))


# -- reductions: single steps on the data, each making the model cheaper or smaller ------


def _conv_blocks(layers: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(start, end) of each conv block: the conv (a depthwise conv with the 1x1 conv right
    after it counts as one) and the batch norm / ReLU / pool after it."""
    conv_like = ("conv", "depthwise_conv")

    def pointwise_of_separable(i: int) -> bool:
        return layers[i]["type"] == "conv" and i > 0 and layers[i - 1]["type"] == "depthwise_conv"

    blocks = []
    for i, layer in enumerate(layers):
        if layer["type"] not in conv_like or pointwise_of_separable(i):
            continue
        j = i + 1
        if j < len(layers) and pointwise_of_separable(j):
            j += 1
        while j < len(layers) and layers[j]["type"] not in (*conv_like, "flatten"):
            j += 1
        blocks.append((i, j))
    return blocks


def smaller_side(n: int) -> int:
    """Three quarters, on a multiple of 4 (64 -> 48 -> 36 -> 28 -> 20 -> 16)."""
    return max(MIN_INPUT, round(n * 0.75 / 4) * 4)


def reductions(arch: Arch, separable: bool = False) -> list[tuple[str, Arch]]:
    """Every single-step reduction of ``arch`` that is still a valid architecture:
    halve one conv's filters, drop one conv block (conv with its batch norm, ReLU and
    pool), a larger first stride, a smaller input, halve one hidden dense layer, remove
    one batch norm; with ``separable``, also make one conv depthwise-separable (a
    depthwise conv of the same kernel and stride, then a 1x1 conv with the original's
    filters, bias and activation). Each comes with a one-line description of the step."""
    arch = load_arch(arch)
    layers = arch["layers"]
    out: list[tuple[str, Arch]] = []

    def child(step: str, new_layers: list[dict[str, Any]], inp: dict[str, int] | None = None):
        doc = {"name": arch["name"], "input": inp or arch["input"], "layers": new_layers}
        try:
            out.append((step, normalise(doc, step)))
        except TinysmileError:
            pass  # a step that leaves no pixels (or no conv) is not an architecture

    for i, layer in enumerate(layers):
        if layer["type"] == "conv" and layer["filters"] >= 2:
            new = copy.deepcopy(layers)
            new[i]["filters"] = layer["filters"] // 2
            child(f"halve {layer['name']} ({layer['filters']} -> {new[i]['filters']} filters)", new)
    blocks = _conv_blocks(layers)
    if len(blocks) >= 2:
        for start, end in blocks:
            child(f"drop the {layers[start]['name']} block", layers[:start] + layers[end:])
    if blocks:
        first = layers[blocks[0][0]]
        # A stride above the kernel size would skip input pixels altogether.
        if first["stride"] < first["kernel"]:
            new = copy.deepcopy(layers)
            new[blocks[0][0]]["stride"] = first["stride"] + 1
            child(f"{first['name']} stride {first['stride']} -> {first['stride'] + 1}", new)
    h, w = arch["input"]["height"], arch["input"]["width"]
    if smaller_side(h) < h or smaller_side(w) < w:
        nh, nw = smaller_side(h), smaller_side(w)
        child(f"input {h}x{w} -> {nh}x{nw}", layers, {"height": nh, "width": nw})
    for i, layer in enumerate(layers[:-1]):
        if layer["type"] == "dense" and layer["units"] >= 2:
            new = copy.deepcopy(layers)
            new[i]["units"] = layer["units"] // 2
            child(f"halve {layer['name']} ({layer['units']} -> {new[i]['units']} units)", new)
    for i, layer in enumerate(layers):
        if layer["type"] == "batch_norm":
            new = copy.deepcopy(layers)
            # The batch norm supplied the conv's offset; without it the conv needs a bias.
            if i > 0 and new[i - 1]["type"] in ("conv", "depthwise_conv"):
                new[i - 1]["bias"] = True
            del new[i]
            child(f"remove {layer['name']}", new)
    channels = [1] + [shape[-1] for shape, _ in shapes(arch)]
    for i, layer in enumerate(layers if separable else []):
        # Separable only pays with a spatial kernel and more than one input channel.
        if layer["type"] == "conv" and layer["kernel"] > 1 and channels[i] > 1:
            depthwise = {
                "type": "depthwise_conv",
                "name": f"{layer['name']}_dw",
                "kernel": layer["kernel"],
                "stride": layer["stride"],
                "padding": layer["padding"],
                "bias": False,
                "activation": None,
            }
            pointwise = {**layer, "kernel": 1, "stride": 1, "padding": "same"}
            new = (
                copy.deepcopy(layers[:i]) + [depthwise, pointwise] + copy.deepcopy(layers[i + 1 :])
            )
            child(f"make {layer['name']} depthwise-separable", new)
    seen: set[str] = set()
    unique = []
    for step, a in out:
        key = arch_key(a)
        if key not in seen and key != arch_key(arch):
            seen.add(key)
            unique.append((step, a))
    return unique


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
