"""Whole-model checks before any op is looked at: what kind of model is this?"""

from __future__ import annotations

import numpy as np

from tinysmile.compiler.ir import Graph
from tinysmile.compiler.ops import lookup
from tinysmile.errors import UnsupportedModelError

INT32_MAX = 2**31 - 1

# What Keras' Flatten emits when the batch size is not fixed.
_DYNAMIC_SHAPE_OPS = {"SHAPE", "STRIDED_SLICE", "PACK"}


def check_dataflow(g: Graph) -> None:
    """Every op has the inputs and the one output its kind needs, and reads only tensors that
    are constant, the model's input, or written by an earlier op: otherwise a kernel would
    read memory nothing wrote (or the planner would have nothing to place)."""
    written = set(g.inputs)
    for op in g.ops:
        spec = lookup(op.kind)
        if spec is None:
            written.update(op.outputs)  # the op is named with every other unsupported one below
            continue
        if len(op.outputs) != 1:
            raise UnsupportedModelError(f"{op.describe()}: {len(op.outputs)} outputs, 1 expected")
        present = [i for i in op.inputs[: spec.min_inputs] if i >= 0]
        if len(present) < spec.min_inputs:
            raise UnsupportedModelError(
                f"{op.describe()}: {len(present)} of its {spec.min_inputs} required inputs"
            )
        wrong_options = spec.options is not None and op.options_type != spec.options
        if wrong_options and (op.options_type is not None or spec.options_required):
            raise UnsupportedModelError(
                f"{op.describe()}: builtin options are {op.options_type or 'missing'},"
                f" {spec.options} expected"
            )
        for i in op.inputs:
            if i >= 0 and not g.tensor(i).is_const and i not in written:
                t = g.tensor(i)
                raise UnsupportedModelError(
                    f"{op.describe()}: input tensor {i} '{t.name}' is written by no earlier op"
                )
        out = op.outputs[0]
        t = g.tensor(out)
        if t.is_const or out in written:
            raise UnsupportedModelError(
                f"{op.describe()}: output tensor {out} '{t.name}' is"
                f" {'a constant' if t.is_const else 'written twice'}"
            )
        written.add(out)
    for i in g.outputs:
        if i not in written:
            t = g.tensor(i)
            raise UnsupportedModelError(
                f"the model's output tensor {i} '{t.name}' is written by no op"
            )


def fixed_batch_notes(g: Graph) -> list[str]:
    """Shapes are static; a -1 in a shape signature is allowed only as the batch of a tensor
    whose static shape says batch 1 (what converters write for a Keras model built without a
    fixed batch). TFLite Micro and LiteRT run such a model as batch 1, and so do we."""
    dynamic = [op for op in g.ops if op.kind in _DYNAMIC_SHAPE_OPS]
    if dynamic:
        op = dynamic[0]
        raise UnsupportedModelError(
            f"{op.describe()}: dynamic shape computation ({', '.join(sorted({o.kind for o in dynamic}))});"
            " export the model with a fixed batch size of 1 (Keras Flatten without it emits these)"
        )
    batch_only = []
    for t in g.tensors:
        sig = t.shape_signature
        if sig is None or t.is_const or not any(s < 0 for s in sig):
            continue
        if any(s < 0 for s in sig[1:]) or not t.shape or t.shape[0] != 1:
            raise UnsupportedModelError(
                f"tensor {t.index} '{t.name}' has a dynamic shape {list(sig)}:"
                " export the model with a fixed batch size of 1"
            )
        batch_only.append(t)
    if not batch_only:
        return []
    t = next((t for t in batch_only if t.index in g.inputs), batch_only[0])
    note = (
        f"the batch is dynamic in the model's shape signature ({list(t.shape_signature)} for"
        f" tensor '{t.name}'); compiled as batch 1, as TFLite Micro and LiteRT run it"
    )
    return [note]


def check_accumulators(g: Graph) -> None:
    """Kernels accumulate in int32 and signed overflow is undefined in C: refuse a layer whose
    worst case, from its real weights and bias, can leave int32."""
    for op in g.ops:
        spec = lookup(op.kind)
        bound = spec.accumulator_bound(g, op) if spec is not None else None
        if bound is not None and bound > INT32_MAX:
            raise UnsupportedModelError(
                f"{op.describe()}: its int32 accumulator can reach {bound:,} (bias + sum of"
                f" (input - zero point) x weight, worst int8 input and output channel), over"
                f" 2^31 - 1 = {INT32_MAX:,}"
            )


def validate_graph(g: Graph) -> list[str]:
    """Refuse what the compiler cannot run exactly; return notes for the report."""
    check_dataflow(g)
    notes = fixed_batch_notes(g)

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
    check_accumulators(g)
    return notes
