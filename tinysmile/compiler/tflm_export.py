"""The TFLite Micro runtime's files: the .tflite as an aligned C array, and an op resolver
holding exactly the model's ops with an arena size computed on the host (never guessed)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinysmile import __version__
from tinysmile.compiler.clits import CArray, c_identifier
from tinysmile.compiler.reader import parse_model
from tinysmile.compiler.tflm import tflm_arena
from tinysmile.errors import UnsupportedModelError
from tinysmile.templating import render

# TFLite builtin -> MicroMutableOpResolver method (TFLM's names do not follow one rule).
RESOLVER_METHODS = {
    "ADD": "AddAdd",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize",
    "FULLY_CONNECTED": "AddFullyConnected",
    "HARD_SWISH": "AddHardSwish",
    "LEAKY_RELU": "AddLeakyRelu",
    "LOGISTIC": "AddLogistic",
    "MAX_POOL_2D": "AddMaxPool2D",
    "MEAN": "AddMean",
    "MUL": "AddMul",
    "PAD": "AddPad",
    "PADV2": "AddPadV2",
    "QUANTIZE": "AddQuantize",
    "RELU": "AddRelu",
    "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape",
    "SOFTMAX": "AddSoftmax",
    "SQUEEZE": "AddSqueeze",
    "SUB": "AddSub",
    "TANH": "AddTanh",
}

# What the allocation report does not see: TFLM's scratch alignment and the few bytes
# later library versions add per tensor. A stated margin, not a guess at the total.
DEFAULT_MARGIN = 0.10
ALIGN = 16


@dataclass
class TflmExport:
    files: list[Path]
    ops: list[str]
    report_bytes: int  # TFLM's own figure (head + tail)
    margin: float
    arena_bytes: int  # what the sketch allocates
    methods: list[str]  # the resolver's Add* calls, one per op kind
    num_ops: int  # operators in the graph (one profiler event each)


def arena_size(report_total: int, margin: float = DEFAULT_MARGIN) -> int:
    return int(math.ceil(report_total * (1.0 + margin) / ALIGN) * ALIGN)


def export_tflm(
    model: bytes, out_dir: str | Path, name: str, margin: float = DEFAULT_MARGIN
) -> TflmExport:
    g = parse_model(model, name=name)
    ops = sorted({op.kind for op in g.ops})
    missing = [k for k in ops if k not in RESOLVER_METHODS]
    if missing:
        raise UnsupportedModelError(
            f"{name}: no TFLite Micro resolver entry known for {', '.join(missing)}"
        )
    report = tflm_arena(model)
    total = report["head"] + report["tail"]
    arena = arena_size(total, margin)
    ident = c_identifier(name)
    context = {
        "version": __version__,
        "name": name,
        "ident": ident,
        "sha256": g.sha256,
        "model": CArray(f"{ident}_model_data", np.frombuffer(model, dtype=np.uint8)),
        "model_len": len(model),
        "methods": [RESOLVER_METHODS[k] for k in ops],
        "ops": ops,
        "report_head": report["head"],
        "report_tail": report["tail"],
        "report_total": total,
        "margin_percent": round(margin * 100, 1),
        "arena_bytes": arena,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for template, filename in (
        ("tflm/model_data.cc.j2", "model_data.cc"),
        ("tflm/model_data.h.j2", "model_data.h"),
        ("tflm/model_ops.h.j2", "model_ops.h"),
    ):
        path = out / filename
        path.write_text(render(template, **context))
        files.append(path)
    methods = [RESOLVER_METHODS[k] for k in ops]
    return TflmExport(files, ops, total, margin, arena, methods, len(g.ops))
