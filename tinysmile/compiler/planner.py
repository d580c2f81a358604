"""Memory planner: tensor lifetimes -> offsets in one static arena.

Tensors that share storage form a group: an alias op (RESHAPE, SQUEEZE) views its input
with another shape, and an in-place op writes its output over its input when that input
dies there. The model's input group lives in the caller's input buffer and its output
group in the caller's output buffer; every other group gets an offset in the arena,
placed greedily, largest first, at the lowest offset that overlaps no group alive at the
same time (the strategy TFLM's greedy planner uses too).

The input lives in the arena too: invoke() copies it in (or the caller fills it in place
through <prefix>_input_buffer()), so its bytes are reused once the first layers have
read it. The output group is the caller's output buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinysmile.compiler.ir import Graph
from tinysmile.compiler.ops import lookup
from tinysmile.errors import UnsupportedModelError

ALIGN = 4  # int8 kernels do not need it; word-wide DSP loads like it


@dataclass
class Group:
    members: list[int]
    size: int
    first: int  # op index that first writes it (-1: before the first op)
    last: int  # op index that last reads it (len(ops): after the last op)
    storage: str = "arena"  # "arena" or "output"
    offset: int = 0


@dataclass
class Plan:
    groups: list[Group]
    group_of: dict[int, int]  # tensor index -> group index
    arena_size: int
    peak_op: int  # op index where the live arena bytes peak
    live_bytes: list[int] = field(default_factory=list)  # per op, arena bytes alive

    def storage(self, tensor: int) -> tuple[str, int]:
        g = self.groups[self.group_of[tensor]]
        return g.storage, g.offset


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_memory(g: Graph) -> Plan:
    n_ops = len(g.ops)
    last_use: dict[int, int] = {}
    produced: dict[int, int] = {i: -1 for i in g.inputs}
    for op in g.ops:
        for t in op.inputs:
            if t >= 0 and not g.tensor(t).is_const:
                last_use[t] = op.index
        for t in op.outputs:
            produced[t] = op.index
    for t in g.outputs:
        last_use[t] = n_ops

    parent: dict[int, int] = {}

    def find(t: int) -> int:
        while parent.get(t, t) != t:
            t = parent[t]
        return t

    def union(a: int, b: int) -> None:
        parent[find(b)] = find(a)

    for op in g.ops:
        spec = lookup(op.kind)
        out = op.outputs[0]
        src = op.inputs[0] if op.inputs else -1
        if spec is None or src < 0 or g.tensor(src).is_const:
            continue
        if spec.alias or (
            spec.in_place
            and last_use.get(src) == op.index
            and g.tensor(src).nbytes == g.tensor(out).nbytes
            # the input lives in the arena and the output in the caller's buffer: never one
            and not (find(src) in {find(i) for i in g.inputs} and out in g.outputs)
        ):
            union(src, out)

    members: dict[int, list[int]] = {}
    for t in produced:
        members.setdefault(find(t), []).append(t)
    groups: list[Group] = []
    group_of: dict[int, int] = {}
    input_roots = {find(i) for i in g.inputs}
    output_roots = {find(o) for o in g.outputs}
    for root, ts in members.items():
        first = min(produced[t] for t in ts)
        last = max(last_use.get(t, produced[t]) for t in ts)
        size = max(g.tensor(t).nbytes for t in ts)
        storage = "arena"
        if root in input_roots and root in output_roots:
            raise UnsupportedModelError("the model's output is its input (no computation)")
        if root in output_roots:
            storage = "output"
        for t in ts:
            group_of[t] = len(groups)
        groups.append(Group(sorted(ts), size, first, last, storage))

    placed: list[Group] = []
    for grp in sorted(
        (x for x in groups if x.storage == "arena"), key=lambda x: (-x.size, x.first)
    ):
        conflicts = sorted(
            (p for p in placed if p.first <= grp.last and grp.first <= p.last),
            key=lambda p: p.offset,
        )
        offset = 0
        for p in conflicts:
            if offset + grp.size <= p.offset:
                break
            offset = max(offset, _align(p.offset + p.size))
        grp.offset = offset
        placed.append(grp)

    arena_size = max((_align(x.offset + x.size) for x in placed), default=0)
    live = []
    for i in range(n_ops):
        live.append(sum(x.size for x in placed if x.first <= i <= x.last))
    peak_op = max(range(n_ops), key=lambda i: live[i]) if n_ops else 0
    return Plan(groups, group_of, arena_size, peak_op, live)
