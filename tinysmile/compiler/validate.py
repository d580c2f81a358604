"""Whole-model checks before any op is looked at: what kind of model is this?"""

from __future__ import annotations

import numpy as np

from tinysmile.compiler.ir import Graph
from tinysmile.compiler.ops import lookup
from tinysmile.errors import UnsupportedModelError

# What Keras' Flatten emits when the batch size is not fixed.
_DYNAMIC_SHAPE_OPS = {"SHAPE", "STRIDED_SLICE", "PACK"}


def validate_graph(g: Graph) -> None:
    dynamic = [op for op in g.ops if op.kind in _DYNAMIC_SHAPE_OPS]
    for t in g.tensors:
        dynamic_sig = t.shape_signature is not None and any(s < 0 for s in t.shape_signature)
        if dynamic_sig and not t.is_const:
            raise UnsupportedModelError(
                f"tensor {t.index} '{t.name}' has a dynamic shape {list(t.shape_signature)}:"
                " export the model with a fixed batch size of 1"
            )
    if dynamic:
        op = dynamic[0]
        raise UnsupportedModelError(
            f"{op.describe()}: dynamic shape computation ({', '.join(sorted({o.kind for o in dynamic}))});"
            " export the model with a fixed batch size of 1 (Keras Flatten without it emits these)"
        )

    activations = [t for t in g.tensors if not t.is_const]
    if any(t.dtype == np.float32 for t in activations):
        int8_weights = any(t.is_const and t.dtype == np.int8 for t in g.tensors)
        float_ops = [
            op
            for op in g.ops
            if op.kind not in ("QUANTIZE", "DEQUANTIZE")
            and any(
                i >= 0 and g.tensor(i).dtype == np.float32 and not g.tensor(i).is_const
                for i in op.inputs
            )
        ]
        if float_ops:
            op = float_ops[0]
            kind = "dynamic-range quantized" if int8_weights else "float"
            raise UnsupportedModelError(
                f"{op.describe()}: this is a {kind} model (float32 activations); convert it with"
                " full-integer quantization (int8 activations, int8 input and output)"
            )
    for t in activations:
        if t.dtype == np.int16:
            raise UnsupportedModelError(
                f"tensor {t.index} '{t.name}': int16 activations (16x8 quantization) are not"
                " supported; use int8 activations"
            )
        if t.dtype == np.uint8:
            raise UnsupportedModelError(
                f"tensor {t.index} '{t.name}': uint8 (legacy) quantization is not supported;"
                " use int8"
            )

    unsupported = [op for op in g.ops if lookup(op.kind) is None]
    if unsupported:
        names = ", ".join(f"{op.kind} (op {op.index})" for op in unsupported)
        raise UnsupportedModelError(f"unsupported ops: {names}")
    for op in g.ops:
        spec = lookup(op.kind)
        assert spec is not None
        spec.validate(g, op)
