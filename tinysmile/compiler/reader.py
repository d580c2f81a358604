"""Read a .tflite flatbuffer into the graph IR, using the schema module LiteRT ships."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from tinysmile.compiler.ir import Graph, Op, Quant, Tensor
from tinysmile.errors import TinysmileError, UnsupportedModelError

_TENSOR_TYPES = {
    getattr(schema.TensorType, n): n
    for n in dir(schema.TensorType)
    if not n.startswith("_") and isinstance(getattr(schema.TensorType, n), int)
}
_NUMPY_TYPES = {
    "FLOAT32": np.float32,
    "INT8": np.int8,
    "UINT8": np.uint8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "BOOL": np.bool_,
    "FLOAT16": np.float16,
}
_OPERATORS = {
    getattr(schema.BuiltinOperator, n): n
    for n in dir(schema.BuiltinOperator)
    if not n.startswith("_") and isinstance(getattr(schema.BuiltinOperator, n), int)
}
_ENUMS = {
    "padding": {schema.Padding.SAME: "SAME", schema.Padding.VALID: "VALID"},
    "fusedActivationFunction": {
        getattr(schema.ActivationFunctionType, n): n
        for n in dir(schema.ActivationFunctionType)
        if not n.startswith("_") and isinstance(getattr(schema.ActivationFunctionType, n), int)
    },
}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def _options(obj: Any) -> dict[str, Any]:
    """Builtin options as a dict with snake_case keys and enums as names."""
    if obj is None:
        return {}
    out: dict[str, Any] = {}
    for key, value in vars(obj).items():
        if key in _ENUMS:
            value = _ENUMS[key].get(value, value)
        if isinstance(value, np.ndarray):
            value = value.tolist()
        out[_snake(key)] = value
    if "fused_activation_function" in out:
        out["activation"] = out.pop("fused_activation_function")
    return out


def _op_name(code: Any) -> str:
    # builtinCode is the field to trust; deprecatedBuiltinCode only for old files.
    value = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))
    if value == schema.BuiltinOperator.CUSTOM:
        return f"CUSTOM:{(code.customCode or b'').decode(errors='replace')}"
    return _OPERATORS.get(value, f"BUILTIN_{value}")


def _ints(values: Any) -> list[int]:
    return [int(v) for v in values] if values is not None else []


def _options_type(obj: Any) -> str | None:
    """The builtin options table's schema name (Conv2DOptions, Pool2DOptions, ...)."""
    if obj is None:
        return None
    return type(obj).__name__.removesuffix("T")


# Tensors larger than this cannot be indexed by the kernels' int32 arithmetic, and no
# microcontroller has the memory: a shape claiming more is damage, not a model.
_MAX_TENSOR_BYTES = 2**31 - 1
_MAX_RANK = 6


def check_structure(model: Any, where: str) -> None:
    """Check what the flatbuffer's tables claim before anything reads them, as TFLite's own
    verifier and InterpreterBuilder do: every index in range, shapes sane, constant data the
    size its shape needs, quantization arrays of matching lengths with finite positive
    scales. A damaged or hostile file then gets one line naming the tensor or op, never an
    IndexError or a division by zero further in."""
    sg = model.subgraphs[0]
    tensors = sg.tensors or []
    buffers = model.buffers or []
    codes = model.operatorCodes or []
    n = len(tensors)

    def bad(what: str) -> TinysmileError:
        return TinysmileError(f"{where}: {what} (damaged or malformed model)")

    for i, t in enumerate(tensors):
        tname = (t.name or b"").decode(errors="replace") or f"tensor_{i}"
        label = f"tensor {i} '{tname}'"
        shape = _ints(t.shape)
        if len(shape) > _MAX_RANK:
            raise bad(f"{label} has rank {len(shape)}")
        if any(d < 0 for d in shape):
            raise bad(f"{label} has a negative dimension in its shape {shape}")
        signature = _ints(t.shapeSignature)
        if t.shapeSignature is not None and len(signature) != len(shape):
            raise bad(f"{label}: shape {shape} and shape signature {signature} differ in rank")
        if t.buffer < 0 or t.buffer >= max(len(buffers), 1):
            raise bad(f"{label} names buffer {t.buffer}, the model has {len(buffers)}")
        type_name = _TENSOR_TYPES.get(t.type)
        itemsize = np.dtype(_NUMPY_TYPES[type_name]).itemsize if type_name in _NUMPY_TYPES else 1
        nbytes = itemsize
        for d in shape:
            nbytes *= d
        if nbytes > _MAX_TENSOR_BYTES:
            raise bad(f"{label}: shape {shape} needs {nbytes:,} bytes")
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale):
            with np.errstate(invalid="ignore", over="ignore"):
                scale = np.asarray(q.scale, dtype=np.float64).reshape(-1)
            zp = _ints(q.zeroPoint)
            if q.zeroPoint is not None and len(zp) != scale.size:
                raise bad(f"{label} has {scale.size} quantization scales and {len(zp)} zero points")
            if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
                raise bad(f"{label} has a quantization scale that is not finite and positive")
            if scale.size > 1:
                axis = quant_axis(q, shape, scale.size)
                if axis >= len(shape) or shape[axis] != scale.size:
                    raise bad(
                        f"{label} has {scale.size} per-channel scales along axis {axis}, its"
                        f" shape is {shape}"
                    )

    for kind, indices in (("input", _ints(sg.inputs)), ("output", _ints(sg.outputs))):
        for t in indices:
            if not 0 <= t < n:
                raise bad(f"the subgraph's {kind} names tensor {t}, the model has {n}")
    for i, o in enumerate(sg.operators or []):
        if not 0 <= o.opcodeIndex < len(codes):
            raise bad(f"op {i} names operator code {o.opcodeIndex}, the model has {len(codes)}")
        for kind, indices, optional in (
            ("input", _ints(o.inputs), True),
            ("output", _ints(o.outputs), False),
        ):
            for t in indices:
                if not (0 <= t < n or (optional and t == -1)):
                    raise bad(
                        f"op {i} ({_op_name(codes[o.opcodeIndex])}) names {kind} tensor"
                        f" {t}, the model has {n}"
                    )


def quant_axis(q: object, shape: list[int], scales: int) -> int:
    """The axis a tensor's per-channel scales run along. A 1-D tensor has one axis they can
    run along: older converters wrote the conv's output axis (3) on its bias, and TFLite
    Micro, which never reads a bias's axis, runs such files (its own person detector)."""
    axis = int(getattr(q, "quantizedDimension", 0) or 0)
    if scales > 1 and len(shape) == 1 and shape[0] == scales:
        return 0
    return axis


def read_model(path: str | Path) -> Graph:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise TinysmileError(f"{p}: cannot read ({exc.strerror})") from None
    return parse_model(data, name=p.stem, source=str(p))


def parse_model(data: bytes, name: str = "model", source: str | None = None) -> Graph:
    where = source or name
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise TinysmileError(f"{where}: not a TFLite flatbuffer (no 'TFL3' identifier)")
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as exc:  # noqa: BLE001 - the flatbuffer runtime raises many kinds
        raise TinysmileError(
            f"{where}: the TFLite flatbuffer is damaged or truncated ({type(exc).__name__})"
        ) from None
    if not model.subgraphs:
        raise TinysmileError(f"{name}: the model has no subgraph")
    if len(model.subgraphs) > 1:
        raise UnsupportedModelError(
            f"{name}: {len(model.subgraphs)} subgraphs (control flow) are not supported"
        )
    check_structure(model, where)
    sg = model.subgraphs[0]
    buffers = model.buffers or []

    def buffer_data(index: int) -> bytes | None:
        if index <= 0 or index >= len(buffers):
            return None
        buf = buffers[index]
        if buf.data is not None and len(buf.data):
            return bytes(np.asarray(buf.data, dtype=np.uint8))
        if buf.offset and buf.offset > 1 and buf.size:
            if buf.offset + buf.size > len(data):
                raise TinysmileError(f"{where}: the file is truncated (a buffer ends past its end)")
            return data[buf.offset : buf.offset + buf.size]
        return None

    tensors: list[Tensor] = []
    for i, t in enumerate(sg.tensors or []):
        tname = (t.name or b"").decode(errors="replace") or f"tensor_{i}"
        type_name = _TENSOR_TYPES.get(t.type, str(t.type))
        dtype = _NUMPY_TYPES.get(type_name)
        if dtype is None:
            raise UnsupportedModelError(f"tensor {i} '{tname}': type {type_name} is not supported")
        shape = tuple(int(s) for s in _ints(t.shape))
        signature = (
            tuple(int(s) for s in t.shapeSignature) if t.shapeSignature is not None else None
        )
        quant = None
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale):
            zp = q.zeroPoint if q.zeroPoint is not None else [0] * len(q.scale)
            quant = Quant(
                scale=np.asarray(q.scale, dtype=np.float32).reshape(-1),
                zero_point=np.asarray(zp, dtype=np.int64).reshape(-1),
                axis=quant_axis(q, list(shape), len(q.scale)),
            )
        raw = buffer_data(t.buffer)
        array = None
        if raw is not None:
            expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            if len(raw) != expected:
                raise TinysmileError(
                    f"{where}: tensor {i} '{tname}' holds {len(raw)} bytes, its shape needs "
                    f"{expected} (damaged or truncated file)"
                )
            array = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        tensors.append(Tensor(i, tname, shape, np.dtype(dtype), quant, array, signature))

    codes = model.operatorCodes or []
    ops: list[Op] = []
    for i, o in enumerate(sg.operators or []):
        ops.append(
            Op(
                index=i,
                kind=_op_name(codes[o.opcodeIndex]),
                inputs=[int(x) for x in _ints(o.inputs)],
                outputs=[int(x) for x in _ints(o.outputs)],
                options=_options(o.builtinOptions),
                options_type=_options_type(o.builtinOptions),
            )
        )
    digest = hashlib.sha256(data).hexdigest()
    description = (model.description or b"").decode(errors="replace")
    return Graph(
        name=name,
        sha256=digest,
        tensors=tensors,
        ops=ops,
        inputs=[int(x) for x in _ints(sg.inputs)],
        outputs=[int(x) for x in _ints(sg.outputs)],
        description=description,
    )
