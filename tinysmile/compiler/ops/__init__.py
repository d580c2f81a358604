"""The op table: TFLite operator name -> op module. Adding an op adds one line here."""

from __future__ import annotations

from tinysmile.compiler.ops.add import Add
from tinysmile.compiler.ops.average_pool2d import AveragePool2D
from tinysmile.compiler.ops.base import OpDef
from tinysmile.compiler.ops.concatenation import Concatenation
from tinysmile.compiler.ops.conv2d import Conv2D
from tinysmile.compiler.ops.depthwise_conv2d import DepthwiseConv2D
from tinysmile.compiler.ops.fully_connected import FullyConnected
from tinysmile.compiler.ops.logistic import Logistic
from tinysmile.compiler.ops.max_pool2d import MaxPool2D
from tinysmile.compiler.ops.mean import Mean
from tinysmile.compiler.ops.mul import Mul
from tinysmile.compiler.ops.pad import Pad
from tinysmile.compiler.ops.quantize import Quantize
from tinysmile.compiler.ops.relu import Relu
from tinysmile.compiler.ops.reshape import Reshape
from tinysmile.compiler.ops.softmax import Softmax

_OPS: list[OpDef] = [
    Conv2D(),
    DepthwiseConv2D(),
    FullyConnected(),
    MaxPool2D(),
    AveragePool2D(),
    Add(),
    Mul(),
    Pad(),
    Reshape(),
    Concatenation(),
    Relu(),
    Quantize(),
    Logistic(),
    Softmax(),
    Mean(),
]

REGISTRY: dict[str, OpDef] = {kind: op for op in _OPS for kind in op.kinds}


def lookup(kind: str) -> OpDef | None:
    return REGISTRY.get(kind)
