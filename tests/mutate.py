"""Seeded mutations of a .tflite for the malformed-model fuzz test: byte flips anywhere, flips
and hostile 32-bit values in the flatbuffer's structure (tables, vectors, offsets), and
truncations."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from ai_edge_litert import schema_py_generated as schema

HOSTILE = [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFC, 0x10000, 0x00FFFFFF]


def structure_positions(data: bytes) -> np.ndarray:
    """Byte positions outside the constant buffers' payloads: the flatbuffer's own tables,
    vtables, vectors and offsets, where a mutation tests the reader rather than the weights."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    payload = np.zeros(len(data), dtype=bool)
    for buf in model.buffers or []:
        if buf.data is not None and len(buf.data) >= 16:
            raw = bytes(np.asarray(buf.data, dtype=np.uint8))
            at = data.find(raw)
            if at >= 0:
                payload[at : at + len(raw)] = True
    return np.flatnonzero(~payload)


def mutations(data: bytes, n: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    rng = np.random.default_rng(seed)
    structure = structure_positions(data)
    words = structure[structure % 4 == 0]
    words = words[words + 4 <= len(data)]
    for i in range(n):
        kind = ("flip", "structure-flip", "hostile-word", "truncate")[i % 4]
        buf = bytearray(data)
        if kind == "flip":
            for _ in range(int(rng.integers(1, 5))):
                buf[int(rng.integers(0, len(buf)))] ^= int(rng.integers(1, 256))
        elif kind == "structure-flip":
            for _ in range(int(rng.integers(1, 3))):
                buf[int(rng.choice(structure))] ^= int(rng.integers(1, 256))
        elif kind == "hostile-word":
            at = int(rng.choice(words))
            value = HOSTILE[int(rng.integers(0, len(HOSTILE)))]
            if rng.integers(0, 2):
                value = int.from_bytes(buf[at : at + 4], "little") + int(rng.integers(-64, 65))
                value &= 0xFFFFFFFF
            buf[at : at + 4] = value.to_bytes(4, "little")
        else:
            buf = buf[: int(rng.integers(8, len(buf)))]
        yield kind, bytes(buf)
