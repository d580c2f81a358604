"""Run a program with the ops' numpy int8 twins: the host reference for every layer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinysmile.compiler.ir import Graph
from tinysmile.compiler.program import Program, build_program


def _as_program(model: Program | Graph | str | Path | bytes) -> Program:
    return model if isinstance(model, Program) else build_program(model)


def reference_layers(
    model: Program | Graph | str | Path | bytes, x: np.ndarray
) -> list[np.ndarray]:
    """Every layer's int8 output for one input, in execution order (the hooks' order)."""
    prog = _as_program(model)
    g = prog.graph
    values: dict[int, np.ndarray] = {
        g.inputs[0]: np.asarray(x, dtype=np.int8).reshape(g.input.shape)
    }
    outs = []
    for layer in prog.layers:
        xs = [
            values[i] if i in values else (g.tensor(i).data if i >= 0 else None)
            for i in layer.op.inputs
        ]
        y = layer.spec.reference(g, layer.op, layer.params, xs)
        out = g.tensor(layer.op.outputs[0])
        y = np.asarray(y).reshape(out.shape)
        assert y.dtype == np.int8, (layer.op.describe(), y.dtype)
        values[layer.op.outputs[0]] = y
        outs.append(y)
    return outs


def reference_invoke(model: Program | Graph | str | Path | bytes, inputs: np.ndarray) -> np.ndarray:
    """Outputs for a batch of inputs (batch first), shape (N, *output shape)."""
    prog = _as_program(model)
    inputs = np.asarray(inputs, dtype=np.int8)
    n = inputs.shape[0]
    flat = inputs.reshape(n, -1)
    return np.stack([reference_layers(prog, row)[-1] for row in flat])
