"""compile_model(): .tflite -> <prefix>_model.c/.h plus the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinysmile import __version__
from tinysmile.compiler.clits import c_float, c_identifier, c_string
from tinysmile.compiler.ir import Graph
from tinysmile.compiler.program import Program, build_program
from tinysmile.errors import TinysmileError
from tinysmile.resources import firmware_dir
from tinysmile.templating import render


@dataclass
class CompileResult:
    c_path: Path
    h_path: Path
    sources: list[Path]  # firmware kernel .c files the model needs
    include_dirs: list[Path]
    report: dict[str, Any]
    program: Program
    prefix: str

    @property
    def graph(self) -> Graph:
        return self.program.graph


@dataclass
class _Call:
    params_type: str
    params_name: str
    fields: list[tuple[str, str]]
    expr: str


@dataclass
class _LayerView:
    position: int
    op_index: int
    kind: str
    name: str
    calls: list[_Call] = field(default_factory=list)
    output_ptr: str = ""
    output_size: int = 0


def kernels_dir() -> Path:
    return firmware_dir() / "kernels"


def _pointer(prog: Program, tensor: int) -> str:
    if tensor < 0:
        return "NULL"
    storage, offset = prog.plan.storage(tensor)
    if storage == "output":
        return "output"
    return f"(arena + {offset})"


def generate(
    prog: Program, prefix: str, perturb_layer: int | None = None
) -> tuple[str, str, list[str], dict[str, Any]]:
    """The .c text, the .h text, the kernel names used, and the report."""
    g = prog.graph
    prefix = c_identifier(prefix)
    arrays = []
    views = []
    kernels: list[str] = []
    report_layers = []
    if perturb_layer is not None and not 0 <= perturb_layer < len(prog.layers):
        raise TinysmileError(f"--perturb-layer {perturb_layer}: no such layer")
    for layer in prog.layers:
        out = g.tensor(layer.op.outputs[0])
        view = _LayerView(
            position=layer.position,
            op_index=layer.op.index,
            kind=layer.op.kind,
            name=f"{prefix}_{layer.name}",
            output_ptr=_pointer(prog, layer.op.outputs[0]),
            output_size=out.size,
        )
        params = layer.params
        if perturb_layer == layer.position and "filter" in params:
            # change the weight itself, so that every array a variant derives from it
            # (packed filters, folded bias) agrees
            params = {**params, "filter": _perturbed(params["filter"])}
        emitted = layer.spec.emit(g, layer.op, params, view.name)
        weights = 0
        if emitted is not None:
            if perturb_layer == layer.position and "filter" not in params:
                _perturb(emitted, layer)
            parts = emitted.parts or [emitted]
            for k, part in enumerate(parts):
                arrays.extend(part.arrays)
                weights += sum(a.nbytes for a in part.arrays)
                # constant operands travel in the params struct; only activations are args
                assert not any(t >= 0 and g.tensor(t).is_const for t in part.inputs)
                params_name = f"{view.name}_params" + (f"_{k}" if len(parts) > 1 else "")
                args = [f"&{params_name}"] + [_pointer(prog, t) for t in part.inputs]
                args.append(view.output_ptr)
                if part.scratch is not None:
                    at = prog.plan.scratch_offset(layer.op.index)
                    assert at is not None, "a kernel takes scratch the planner did not place"
                    args.append(f"({part.scratch} *)(void *)(arena + {at})")
                view.calls.append(
                    _Call(
                        part.params_type,
                        params_name,
                        part.fields,
                        f"{part.kernel}({', '.join(args)})",
                    )
                )
            # a variant lives in its op's kernel file (tsm_conv2d.c has tsm_conv2d_tiled),
            # or in the one its parts name
            for file in [part.kernel_file or layer.spec.kernel for part in parts]:
                if file and file not in kernels:
                    kernels.append(file)
        elif perturb_layer == layer.position:
            raise TinysmileError(f"--perturb-layer {perturb_layer}: that layer has no weights")
        views.append(view)
        storage, offset = prog.plan.storage(layer.op.outputs[0])
        report_layers.append(
            {
                "layer": layer.position,
                "op": layer.op.index,
                "kind": layer.op.kind,
                "variant": layer.params.get("variant", "generic"),
                "output_shape": list(out.shape),
                "macs": layer.spec.macs(g, layer.op),
                "weights_bytes": weights,
                "output_bytes": out.nbytes,
                "storage": storage,
                "offset": offset if storage == "arena" else None,
                "live_arena_bytes": prog.plan.live_bytes[layer.position],
            }
        )
    x, y = g.input, g.output
    arena = prog.plan.arena_size
    context = {
        "version": __version__,
        "model_name": g.name,
        "name_literal": c_string(g.name),
        "sha256": g.sha256,
        "prefix": prefix,
        "macro": prefix.upper(),
        "guard": f"{prefix.upper()}_MODEL_H",
        "kernel_headers": [f"tsm_{k}.h" for k in kernels],
        "arrays": arrays,
        "layers": views,
        "arena_size": arena,
        "arena_words": (arena + 3) // 4,
        "input_offset": prog.plan.storage(g.inputs[0])[1],
        "input_size": x.size,
        "output_size": y.size,
        "input_shape": list(x.shape),
        "output_shape": list(y.shape),
        "input_scale": c_float(x.scale),
        "input_zero_point": x.zero_point,
        "output_scale": c_float(y.scale),
        "output_zero_point": y.zero_point,
    }
    c_text = render("model/model.c.j2", **context)
    h_text = render("model/model.h.j2", **context)
    peak = prog.plan.peak_op
    report = {
        "model": g.name,
        "sha256": g.sha256,
        "prefix": prefix,
        "tinysmile_version": __version__,
        "input": {"shape": list(x.shape), "scale": x.scale, "zero_point": x.zero_point},
        "output": {"shape": list(y.shape), "scale": y.scale, "zero_point": y.zero_point},
        "ops": sorted({layer.op.kind for layer in prog.layers}),
        "layers": report_layers,
        "macs": sum(r["macs"] for r in report_layers),
        "weights_bytes": sum(r["weights_bytes"] for r in report_layers),
        "arena_bytes": arena,
        "output_buffer_bytes": y.nbytes,
        "peak_layer": peak,
        "peak_layer_kind": prog.layers[peak].op.kind if prog.layers else None,
        "stripped_edges": prog.stripped,
        "notes": prog.notes,
        "perturbed_layer": perturb_layer,
    }
    return c_text, h_text, kernels, report


def _perturbed(weights: np.ndarray) -> np.ndarray:
    """The weight with the largest magnitude has its sign flipped: a small weight nudged by
    one step is often absorbed by rounding or a ReLU clamp and would test nothing."""
    values = weights.astype(np.int16).copy()
    flat = values.reshape(-1)
    k = int(np.argmax(np.abs(flat)))
    flat[k] = -flat[k] if flat[k] != 0 else 100
    return np.clip(values, -127, 127).astype(np.int8)


def _perturb(emitted, layer) -> None:
    """Test-only: change one weight so that parity checks have something to catch.

    The weight with the largest magnitude has its sign flipped: a small weight nudged by
    one step is often absorbed by rounding or a ReLU clamp and would test nothing.
    """
    for array in [a for part in (emitted.parts or [emitted]) for a in part.arrays]:
        if array.values.dtype == np.int8 and array.values.size:
            array.values = _perturbed(array.values)
            return
    raise TinysmileError(f"--perturb-layer {layer.position}: that layer has no int8 weights")


@dataclass
class InMemory:
    """What the host needs to check a device: the program and the report, no files."""

    program: Program
    report: dict[str, Any]


def compile_in_memory(model: str | Path | bytes, prefix: str = "model") -> InMemory:
    prog = build_program(model)
    _, _, _, report = generate(prog, prefix)
    return InMemory(prog, report)


def compile_model(
    model: str | Path | bytes,
    out_dir: str | Path,
    prefix: str = "model",
    layer_hooks: bool = False,  # hooks are compiled in by -DTSM_LAYER_HOOKS; kept for callers
    perturb_layer: int | None = None,
    portable: bool = False,
) -> CompileResult:
    """Compile a full-int8 .tflite; writes nothing when the model is refused. portable=True
    puts every layer on its generic kernel (see build_program)."""
    prog = build_program(model, portable=portable)
    c_text, h_text, kernels, report = generate(prog, prefix, perturb_layer)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pfx = report["prefix"]
    c_path = out / f"{pfx}_model.c"
    h_path = out / f"{pfx}_model.h"
    c_path.write_text(c_text)
    h_path.write_text(h_text)
    kdir = kernels_dir()
    sources = [kdir / f"tsm_{k}.c" for k in kernels]
    return CompileResult(
        c_path=c_path,
        h_path=h_path,
        sources=sources,
        include_dirs=[out, firmware_dir(), kdir],
        report=report,
        program=prog,
        prefix=pfx,
    )
