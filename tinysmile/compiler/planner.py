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

Two more things share the arena:
- scratch: a kernel variant may declare working memory (the tiled convolution's int16
  columns), a group alive during its op only, so the reported arena is all the RAM;
- offset in-place: an op whose output pixels are written in raster order may write its
  output over the part of its input that no later pixel reads. Its op module proves how
  many bytes before its input the output must start at least (the lead, see
  ops.base.window_lead); the planner then lets the two groups overlap when
  output offset + lead <= input offset. Greedy placement with that extra freedom depends
  on the order groups are placed in, so a few orders are tried, the best one is improved
  by a seeded local search over orders, and the smallest arena is kept
  (deterministically).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from tinysmile.compiler.ir import Graph
from tinysmile.compiler.ops import lookup
from tinysmile.errors import UnsupportedModelError

ALIGN = 4  # int8 kernels do not need it; word-wide DSP loads like it
# _improve's budget: moves tried, at most IMPROVE_WORK / groups of them (about half a
# second for a 50-group model, and bounded for larger ones)
IMPROVE_MOVES = 3000
IMPROVE_WORK = 600_000


@dataclass
class Group:
    members: list[int]
    size: int
    first: int  # op index that first writes it (-1: before the first op)
    last: int  # op index that last reads it (len(ops): after the last op)
    storage: str = "arena"  # "arena" or "output"
    offset: int = 0
    scratch_of: int | None = None  # op index whose kernel uses this group as scratch


@dataclass
class Plan:
    groups: list[Group]
    group_of: dict[int, int]  # tensor index -> group index
    arena_size: int
    peak_op: int  # op index where the live arena bytes peak
    live_bytes: list[int] = field(default_factory=list)  # per op, arena bytes alive
    scratch: dict[int, int] = field(default_factory=dict)  # op index -> group index
    # (output group, input group, lead): pairs allowed to overlap, see the module doc
    overlaps: list[tuple[int, int, int]] = field(default_factory=list)

    def storage(self, tensor: int) -> tuple[str, int]:
        g = self.groups[self.group_of[tensor]]
        return g.storage, g.offset

    def scratch_offset(self, op_index: int) -> int | None:
        k = self.scratch.get(op_index)
        return None if k is None else self.groups[k].offset


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_memory(
    g: Graph, scratch: dict[int, int] | None = None, leads: dict[int, int] | None = None
) -> Plan:
    """scratch: op index -> bytes its kernel needs; leads: op index -> the proven lead of
    an op whose output may overlap its (dying) first input."""
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

    for op_index, nbytes in sorted((scratch or {}).items()):
        if nbytes > 0:
            groups.append(Group([], nbytes, op_index, op_index, "arena", scratch_of=op_index))

    overlaps = []
    for op in g.ops:
        lead = (leads or {}).get(op.index)
        if lead is None or not op.inputs or op.inputs[0] < 0:
            continue
        src, dst = group_of.get(op.inputs[0]), group_of[op.outputs[0]]
        if src is None or src == dst:
            continue
        if groups[src].last == op.index and "arena" == groups[src].storage == groups[dst].storage:
            overlaps.append((dst, src, lead))

    arena = [k for k, x in enumerate(groups) if x.storage == "arena"]
    orders = [
        sorted(arena, key=lambda k: (-groups[k].size, groups[k].first)),  # TFLM's order
        sorted(arena, key=lambda k: (groups[k].first, -groups[k].size)),
        sorted(arena, key=lambda k: (-groups[k].last, -groups[k].size)),
    ]
    if overlaps:
        rng = random.Random(0)
        for _ in range(max(8, min(64, 4000 // max(1, len(arena))))):
            order = list(arena)
            rng.shuffle(order)
            orders.append(order)
    best: list | None = None
    for order in orders:
        offsets = _place(groups, order, overlaps)
        size = max((_align(offsets[k] + groups[k].size) for k in arena), default=0)
        if best is None or size < best[0]:
            best = [size, offsets, order]
    if best is not None and len(arena) > 2:
        best = _improve(groups, arena, overlaps, best)
    placed = []
    for k in arena:
        groups[k].offset = best[1][k] if best else 0
        placed.append(groups[k])

    arena_size = max((_align(x.offset + x.size) for x in placed), default=0)
    live = []
    for i in range(n_ops):
        live.append(sum(x.size for x in placed if x.first <= i <= x.last))
    peak_op = max(range(n_ops), key=lambda i: live[i]) if n_ops else 0
    scratch_groups = {x.scratch_of: k for k, x in enumerate(groups) if x.scratch_of is not None}
    return Plan(groups, group_of, arena_size, peak_op, live, scratch_groups, overlaps)


def _improve(groups: list[Group], arena: list[int], overlaps: list, best: list) -> list:
    """Local search over placement orders from the best one found: move one group to
    another place in the order, keep the move if the arena is no larger (moves across a
    plateau included), a fixed number of times with a fixed seed, so the plan is the same
    on every run. It finds the orders greedy placement needs to fit a chain of offset
    in-place pairs under a branch kept for a residual ADD (mini-Xception: 73,144 B
    against 88,712 from the orders above)."""
    size, offsets, order = best
    rng = random.Random(1)
    n = len(arena)
    for _ in range(min(IMPROVE_MOVES, IMPROVE_WORK // n)):
        trial = list(order)
        trial.insert(rng.randrange(n), trial.pop(rng.randrange(n)))
        placed = _place(groups, trial, overlaps)
        trial_size = max(_align(placed[k] + groups[k].size) for k in arena)
        if trial_size <= size:
            size, offsets, order = trial_size, placed, trial
    return [size, offsets, order]


def _place(groups: list[Group], order: list[int], overlaps: list[tuple[int, int, int]]) -> dict:
    """Greedy: each group at the lowest offset that clashes with no group placed before
    it and alive at the same time. A clash is an overlap, unless the pair is an offset
    in-place pair whose output starts at least `lead` bytes before its input."""
    below = {(dst, src): lead for dst, src, lead in overlaps}  # dst may sit lead below src
    offsets: dict[int, int] = {}
    for k in order:
        grp = groups[k]
        live = [j for j in offsets if groups[j].first <= grp.last and grp.first <= groups[j].last]
        candidates = {0}
        for j in live:
            candidates.add(_align(offsets[j] + groups[j].size))
            if (j, k) in below:  # k is the input of j's op: k may start lead past j
                candidates.add(max(0, _align(offsets[j] + below[(j, k)])))
            if (k, j) in below:  # k is the output of j's op: k may start lead before j
                at = (offsets[j] - below[(k, j)]) // ALIGN * ALIGN
                if at >= 0:
                    candidates.add(at)

        offsets[k] = next(
            at for at in sorted(candidates) if _fits(groups, offsets, below, k, live, at)
        )
    return offsets


def _fits(
    groups: list[Group],
    offsets: dict[int, int],
    below: dict[tuple[int, int], int],
    k: int,
    live: list[int],
    at: int,
) -> bool:
    size = groups[k].size
    for j in live:
        o, sz = offsets[j], groups[j].size
        if at + size <= o or o + sz <= at:
            continue
        if (k, j) in below and at + below[(k, j)] <= o:
            continue
        if (j, k) in below and o + below[(j, k)] <= at:
            continue
        return False
    return True
