"""What every op module provides; the registry in ops/__init__.py maps names to them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinysmile.compiler.clits import CArray, c_int
from tinysmile.compiler.ir import Graph, Op, Tensor
from tinysmile.errors import UnsupportedModelError


@dataclass
class Emitted:
    """What the template needs for one layer: a params struct, its arrays, the tensors."""

    kernel: str  # C function, e.g. "tsm_conv2d"
    params_type: str  # C struct type, e.g. "tsm_conv2d_params_t"
    fields: list[tuple[str, str]] = field(default_factory=list)  # designated initializers
    arrays: list[CArray] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)  # tensor indices passed before the output
    # a layer that needs several kernel calls (CONCATENATION: one per input) lists them here
    parts: list[Emitted] = field(default_factory=list)


class OpDef:
    """Base for op modules. Subclasses set `kinds` and `kernel` and override the methods."""

    kinds: tuple[str, ...] = ()
    kernel: str | None = None  # firmware/kernels/tsm_<kernel>.c; None for aliases
    alias: bool = False  # output is the input's storage viewed with another shape
    in_place: bool = False  # output may overwrite input 0 (same size, elementwise)
    min_inputs: int = 1  # inputs that must be present (optional ones may be -1 after these)
    options: str | None = None  # the schema's builtin options table this op reads
    options_required: bool = False  # no defaults make sense without it (strides, filter)

    def validate(self, g: Graph, op: Op) -> None:
        """Raise UnsupportedModelError for anything the kernel cannot do exactly."""

    def prepare(self, g: Graph, op: Op) -> dict[str, Any]:
        """Integer parameters derived once from the model (multipliers, shifts, padding)."""
        return {}

    def reference(self, g: Graph, op: Op, p: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
        """The numpy int8 twin of the C kernel: same bytes, by construction and by test."""
        raise NotImplementedError

    def emit(self, g: Graph, op: Op, p: dict[str, Any], name: str) -> Emitted | None:
        """Params struct and arrays for the template; None for aliases."""
        raise NotImplementedError

    def macs(self, g: Graph, op: Op) -> int:
        return 0

    def accumulator_bound(self, g: Graph, op: Op) -> int | None:
        """The largest |int32 accumulator| any input can drive this op to, or None for ops
        that do not accumulate products in int32."""
        return None


def fail(op: Op, what: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"{op.describe()}: {what}")


def require_int8(g: Graph, op: Op, indices: list[int]) -> None:
    for i in indices:
        if i < 0:
            continue
        t = g.tensor(i)
        if t.dtype != np.int8:
            raise fail(op, f"tensor '{t.name}' is {t.dtype}, only int8 activations are supported")
        if t.quant is None:
            raise fail(op, f"tensor '{t.name}' has no quantization parameters")


def require_per_tensor(op: Op, t: Tensor) -> None:
    if t.quant is not None and t.quant.per_channel:
        raise fail(op, f"tensor '{t.name}' is quantized per channel where per tensor is required")


def activation_of(op: Op) -> str:
    act = op.options.get("activation", "NONE")
    if act not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
        raise fail(op, f"fused activation {act} is not supported")
    return act


def dims(shape: tuple[int, ...], rank: int = 4) -> list[int]:
    """Shape padded on the left with ones to `rank` (NHWC for 4)."""
    return [1] * (rank - len(shape)) + list(shape)


def int_fields(p: dict[str, Any], names: list[str]) -> list[tuple[str, str]]:
    return [(n, c_int(p[n])) for n in names]


def require_positive(op: Op, **values: int) -> None:
    """Strides and filter sizes: zero or negative would divide by zero or loop forever."""
    for key, value in values.items():
        if int(value) < 1:
            raise fail(op, f"{key}={value} must be at least 1")


def compute_padding(
    padding: str, in_size: int, filter_size: int, stride: int, dilation: int = 1
) -> tuple[int, int]:
    """(output size, leading padding) as TFLite's ComputePaddingHeightWidth gives them."""
    effective = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        out = (in_size + stride - 1) // stride
    else:
        out = (in_size - effective + stride) // stride
    total = max(0, (out - 1) * stride + effective - in_size)
    return out, total // 2
