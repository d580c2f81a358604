"""Small helpers that turn Python values into C literals (templates only substitute)."""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass

import numpy as np

_C_TYPES = {
    np.dtype(np.int8): "int8_t",
    np.dtype(np.uint8): "uint8_t",
    np.dtype(np.int16): "int16_t",
    np.dtype(np.int32): "int32_t",
    np.dtype(np.int64): "int64_t",
}
_IDENT = re.compile(r"[^A-Za-z0-9_]")


def c_identifier(name: str) -> str:
    out = _IDENT.sub("_", name)
    if not out or out[0].isdigit():
        out = "_" + out
    return out


def c_int(value: int) -> str:
    v = int(value)
    if v == -(2**31):
        # -2147483648 is a unary minus applied to an unsigned literal in C90 rules
        return "(-2147483647 - 1)"
    return str(v)


def c_float(value: float) -> str:
    """A float32 literal that parses back to exactly the same float32."""
    f = float(np.float32(value))
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"no C literal for {value}")
    text = repr(f)
    if "e" not in text and "." not in text:
        text += ".0"
    assert struct.pack("<f", float(np.float32(text))) == struct.pack("<f", f)
    return text + "f"


def c_string(text: str) -> str:
    """A C string literal: printable ASCII as is, quote and backslash escaped, every other
    byte of the UTF-8 text as a three-digit octal escape (which never swallows a following
    digit, unlike a hex escape)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode())
    return '"' + "".join(out) + '"'


@dataclass
class CArray:
    """A const array in the generated .c file."""

    name: str
    values: np.ndarray

    @property
    def ctype(self) -> str:
        return _C_TYPES[np.dtype(self.values.dtype)]

    @property
    def size(self) -> int:
        return int(self.values.size)

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes)

    def body(self, per_line: int = 16) -> str:
        flat = [c_int(v) for v in self.values.ravel().tolist()]
        lines = [", ".join(flat[i : i + per_line]) for i in range(0, len(flat), per_line)]
        return ",\n    ".join(lines)
