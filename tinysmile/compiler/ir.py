"""Graph IR: what the compiler knows about a model after reading it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Quant:
    """Affine quantization: real = scale * (q - zero_point), per tensor or per channel."""

    scale: np.ndarray  # float32, shape (1,) or (channels,)
    zero_point: np.ndarray  # int64, same shape as scale
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    @property
    def scalar_scale(self) -> float:
        return float(self.scale[0])

    @property
    def scalar_zero_point(self) -> int:
        return int(self.zero_point[0])


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    quant: Quant | None = None
    data: np.ndarray | None = None  # constant tensors (weights, bias, shapes)
    shape_signature: tuple[int, ...] | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    @property
    def zero_point(self) -> int:
        assert self.quant is not None, self.name
        return self.quant.scalar_zero_point

    @property
    def scale(self) -> float:
        assert self.quant is not None, self.name
        return self.quant.scalar_scale


@dataclass
class Op:
    index: int
    kind: str  # builtin operator name, e.g. "CONV_2D"
    inputs: list[int]  # tensor indices, -1 for an absent optional input
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)
    options_type: str | None = None  # schema name of the builtin options, e.g. Conv2DOptions

    def describe(self) -> str:
        return f"op {self.index} ({self.kind})"


@dataclass
class Graph:
    name: str
    sha256: str
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    description: str = ""

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def op_inputs(self, op: Op) -> list[Tensor | None]:
        return [self.tensors[i] if i >= 0 else None for i in op.inputs]

    def op_output(self, op: Op) -> Tensor:
        return self.tensors[op.outputs[0]]

    @property
    def input(self) -> Tensor:
        return self.tensors[self.inputs[0]]

    @property
    def output(self) -> Tensor:
        return self.tensors[self.outputs[0]]
