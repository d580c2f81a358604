"""Per-layer instruction (or cycle) counts from the device, with MACs from the compiler."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tinysmile.boards import Board
from tinysmile.device.client import DeviceClient


@dataclass
class LayerProfile:
    layer: int
    kind: str
    count: int
    macs: int
    variant: str = "generic"  # the kernel variant the compiler chose for the layer

    @property
    def macs_per_count(self) -> float:
        return self.macs / self.count if self.count else 0.0


@dataclass
class ProfileResult:
    unit: str  # "instructions" under QEMU -icount, "cycles" on a real board
    total: int  # one inference without hooks (the number to quote)
    hooked_total: int  # the profiled run, hooks included
    macs: int
    layers: list[LayerProfile] = field(default_factory=list)

    @property
    def macs_per_count(self) -> float:
        return self.macs / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["macs_per_" + self.unit[:-1]] = self.macs_per_count
        for row, layer in zip(d["layers"], self.layers):
            row["macs_per_" + self.unit[:-1]] = layer.macs_per_count
        return d


def profile(
    client: DeviceClient,
    board: Board,
    report: dict[str, Any],
    x: np.ndarray | None = None,
    runtime: str = "native",
) -> ProfileResult:
    """Profile one input (seeded random when None): a plain INFER for the total, then
    PROFILE for the per-layer split (its hook adds a few instructions per layer)."""
    if x is None:
        shape = tuple(report["input"]["shape"])
        x = np.random.default_rng(0).integers(-128, 128, size=shape).astype(np.int8)
    raw = x.astype(np.int8).tobytes()
    plain = client.infer(raw)
    prof = client.profile(raw)
    layers = []
    rows = report["layers"]
    # Stamps are converted to the counter unit before differencing, so each layer's
    # count is exact (the tick -> instruction map is not linear per interval).
    prev = board.ticks_to_count(prof.start_ticks)
    ends = [board.ticks_to_count(t) for t in prof.layer_end_ticks]
    for i, end in enumerate(ends):
        row = rows[i] if i < len(rows) else {"kind": "?", "macs": 0}
        # The compiler's variants are tinysmile's kernels; another runtime runs its own.
        variant = row.get("variant", "generic") if runtime == "native" else runtime
        layers.append(LayerProfile(i, row["kind"], end - prev, int(row["macs"]), variant))
        prev = end
    return ProfileResult(
        unit=board.counter_unit,
        total=board.count_between(plain.start_ticks, plain.end_ticks),
        hooked_total=board.count_between(prof.start_ticks, prof.end_ticks),
        macs=int(report["macs"]),
        layers=layers,
    )


def profile_linked(elf, board: Board, report: dict[str, Any], x: np.ndarray | None = None) -> dict:
    """The linked firmware's model on the instruction-set emulator: instructions of one
    inference (seeded random input when None), their mix, and cycles and milliseconds
    estimated from the Cortex-M4 TRM's timings at the board's clock (an estimate: see
    `assumptions`)."""
    from tinysmile.device.isasim import ASSUMPTIONS, HarnessModel

    if x is None:
        shape = tuple(report["input"]["shape"])
        x = np.random.default_rng(0).integers(-128, 128, size=shape).astype(np.int8)
    res = HarnessModel(elf).profile(x.astype(np.int8).tobytes())
    clock = int(board["clock_hz"])
    res.update(
        elf=str(elf),
        unit="instructions",
        macs=int(report["macs"]),
        clock_hz=clock,
        ms_estimate=1000.0 * res["cycles_estimate"] / clock,
        assumptions=list(ASSUMPTIONS),
    )
    return res
