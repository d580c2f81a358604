"""A model ready to emit or interpret: validated graph, per-op integer params, memory plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinysmile.compiler.ir import Graph, Op
from tinysmile.compiler.ops import lookup
from tinysmile.compiler.ops.base import OpDef
from tinysmile.compiler.planner import Plan, plan_memory
from tinysmile.compiler.reader import parse_model, read_model
from tinysmile.compiler.validate import validate_graph


@dataclass
class Layer:
    position: int  # execution order, the layer number hooks and the device use
    op: Op
    spec: OpDef
    params: dict[str, Any]

    @property
    def name(self) -> str:
        return f"l{self.position}"


@dataclass
class Program:
    graph: Graph
    layers: list[Layer]
    plan: Plan
    stripped: list[str]  # edge QUANTIZE/DEQUANTIZE ops removed (float model I/O)
    notes: list[str] = field(default_factory=list)  # what the compiler assumed (batch 1)

    @property
    def input(self):
        return self.graph.input

    @property
    def output(self):
        return self.graph.output


def strip_float_edges(g: Graph) -> list[str]:
    """Drop a float->int8 QUANTIZE at the input and an int8->float DEQUANTIZE at the output.

    The compiled model then takes and returns int8 with those ops' quantization, which is
    what a microcontroller feeds it anyway.
    """
    stripped = []
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        return stripped
    first = g.ops[0] if g.ops else None
    if (
        first is not None
        and first.kind == "QUANTIZE"
        and first.inputs[0] == g.inputs[0]
        and g.tensor(first.inputs[0]).dtype == np.float32
        and sum(first.inputs[0] in op.inputs for op in g.ops) == 1
    ):
        g.inputs = [first.outputs[0]]
        g.ops = g.ops[1:]
        stripped.append(f"QUANTIZE (op {first.index}) at the input")
    last = g.ops[-1] if g.ops else None
    if (
        last is not None
        and last.kind == "DEQUANTIZE"
        and last.outputs[0] == g.outputs[0]
        and g.tensor(last.outputs[0]).dtype == np.float32
    ):
        g.outputs = [last.inputs[0]]
        g.ops = g.ops[:-1]
        stripped.append(f"DEQUANTIZE (op {last.index}) at the output")
    return stripped


def build_program(model: str | Path | bytes | Graph, portable: bool = False) -> Program:
    """portable=True: every layer on its generic kernel (the reference path the specialised
    variants are tested against)."""
    if isinstance(model, Graph):
        g = model
    elif isinstance(model, bytes | bytearray):
        g = parse_model(bytes(model))
    else:
        g = read_model(model)
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        from tinysmile.errors import UnsupportedModelError

        raise UnsupportedModelError(
            f"{g.name}: {len(g.inputs)} inputs and {len(g.outputs)} outputs; one of each is"
            " supported"
        )
    stripped = strip_float_edges(g)
    notes = validate_graph(g)
    layers = []
    scratch: dict[int, int] = {}
    leads: dict[int, int] = {}
    for pos, op in enumerate(g.ops):
        spec = lookup(op.kind)
        assert spec is not None
        params = spec.prepare(g, op)
        params["variant"] = "generic" if portable else spec.variant(g, op, params)
        scratch[op.index] = spec.scratch_bytes(g, op, params)
        lead = spec.inplace_lead(g, op, params)
        if lead is not None:
            leads[op.index] = lead
        layers.append(Layer(pos, op, spec, params))
    return Program(g, layers, plan_memory(g, scratch, leads), stripped, notes)
