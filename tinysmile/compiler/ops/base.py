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
    # C element type of the scratch the kernel takes as its last argument (None: none);
    # its size is OpDef.scratch_bytes, its place the planner's
    scratch: str | None = None
    # the kernel file (firmware/kernels/tsm_<name>.c) when the kernel is another op's: a
    # depthwise layer on one input channel runs conv2d's tiled kernel; None: the op's own
    kernel_file: str | None = None


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

    def variant(self, g: Graph, op: Op, p: dict[str, Any]) -> str:
        """The kernel variant for this layer, chosen from its shapes and constants; the
        report and the profile name it. "generic" is the portable kernel every op has,
        and build_program(portable=True) picks it everywhere."""
        return "generic"

    def scratch_bytes(self, g: Graph, op: Op, p: dict[str, Any]) -> int:
        """Working memory the chosen variant needs during the op, placed in the arena."""
        return 0

    def inplace_lead(self, g: Graph, op: Op, p: dict[str, Any]) -> int | None:
        """How many bytes before its first input the output must start at least for the
        op to write over that input safely (see window_lead); None: never overlap."""
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


def window_lead(p: dict[str, Any], in_c: int, out_c: int) -> int:
    """The lead of a windowed op (convolution, pooling) writing output pixels in raster order.

    What every variant of these kernels guarantees: once a byte of output pixel P is
    written, the input is read only by the windows of pixels P, P+1, ... (the portable
    kernels read P's window again for each channel; the tiled one reads a pair of pixels
    before writing either). The lowest input byte any of them reads is the top-left
    corner of its window, clipped to the input. Output byte k sits lead bytes before
    input byte k, so writing pixel P's last byte (P + 1) * out_c - 1 is safe when that
    address is below every input byte still to be read.
    """
    oy = np.arange(p["output_h"]).reshape(-1, 1)
    ox = np.arange(p["output_w"]).reshape(1, -1)
    iy = np.maximum(oy * p["stride_h"] - p["pad_h"], 0)
    ix = np.maximum(ox * p["stride_w"] - p["pad_w"], 0)
    first = ((iy * p["input_w"] + ix) * in_c).reshape(-1)
    per_batch = p["input_h"] * p["input_w"] * in_c
    first = (first[None, :] + np.arange(p["batches"])[:, None] * per_batch).reshape(-1)
    still_read = np.minimum.accumulate(first[::-1])[::-1]  # min over pixels P, P+1, ...
    ends = (np.arange(first.size, dtype=np.int64) + 1) * out_c
    return int((ends - still_read).max())
