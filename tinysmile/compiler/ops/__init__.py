"""The op table: TFLite operator name -> op module. Adding an op adds one line here."""

from __future__ import annotations

from tinysmile.compiler.ops.base import OpDef
from tinysmile.compiler.ops.conv2d import Conv2D

_OPS: list[OpDef] = [
    Conv2D(),
]

REGISTRY: dict[str, OpDef] = {kind: op for op in _OPS for kind in op.kinds}


def lookup(kind: str) -> OpDef | None:
    return REGISTRY.get(kind)
