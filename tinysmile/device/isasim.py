"""A linked firmware's model, run on a Cortex-M4 instruction-set emulator (Unicorn).

No board and no peripherals: the ELF's loadable segments are mapped at their addresses
(initialised data at its run address, as the startup code would leave it), and the
harness's own binding, the `tsm_harness_model` table the glue defines, is read from the
ELF: its setup (TFLite Micro's), its invoke and its input/output buffers. Calling invoke
with the input written into the firmware's buffer runs exactly the instructions the board
would run, as linked, optimisation flags and all.

Counting: every executed instruction is seen by a code hook; its class (from Capstone's
decoding) and whether a branch was taken give an estimated cycle count from the Cortex-M4
Technical Reference Manual's timings (`CYCLES` below, with its assumptions).
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinysmile.errors import TinysmileError

HARNESS_SYMBOL = "tsm_harness_model"
# tsm_harness_model_t (firmware/harness/tsm_harness.h), 32-bit pointers: info, invoke,
# invoke_hooked, board, input, output, layer_ticks, stack_size, setup, arena_used.
_HARNESS = struct.Struct("<10I")
# tsm_model_info_t (firmware/tsm_model.h): name, sha256, input_size, output_size.
_INFO = struct.Struct("<2I2i")

_PAGE = 0x1000
# Our own stack and the return trap, where no Cortex-M4 memory map puts anything.
_STACK_TOP = 0x7F000000
_STACK_SIZE = 256 * 1024
_TRAP = 0x7F100000
# Peripheral and system space: the harness's setup may touch registers; they read 0.
_PERIPHERALS = (0x40000000, 0xE0000000)


@dataclass
class RunStats:
    instructions: int = 0
    mix: Counter = field(default_factory=Counter)  # instruction class -> count
    taken_branches: int = 0
    unmapped_pages: int = 0  # peripheral pages mapped on first touch


def _load_elf(path: Path) -> tuple[list[tuple[int, int, bytes]], dict[str, int]]:
    from elftools.elf.elffile import ELFFile

    segments, symbols = [], {}
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        if elf["e_machine"] != "EM_ARM":
            raise TinysmileError(f"{path}: not an Arm ELF ({elf['e_machine']})")
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_memsz"]:
                segments.append((int(seg["p_vaddr"]), int(seg["p_memsz"]), seg.data()))
        symtab = elf.get_section_by_name(".symtab")
        if symtab is None:
            raise TinysmileError(f"{path}: no symbol table (stripped?)")
        for sym in symtab.iter_symbols():
            if sym.name and sym["st_info"]["type"] in ("STT_OBJECT", "STT_FUNC"):
                symbols.setdefault(sym.name, int(sym["st_value"]))
    return segments, symbols


class LinkedFirmware:
    """One ELF in one emulator; call() runs a function of it to its return."""

    def __init__(self, elf: str | Path):
        from unicorn import UC_ARCH_ARM, UC_HOOK_MEM_UNMAPPED, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
        from unicorn.arm_const import UC_CPU_ARM_CORTEX_M4

        self.path = Path(elf)
        segments, self.symbols = _load_elf(self.path)
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        self.uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M4)
        self.stats = RunStats()
        pages: set[int] = set()
        for addr, size, _ in segments:
            pages.update(range(addr // _PAGE, (addr + size + _PAGE - 1) // _PAGE))
        for start, end in _runs(sorted(pages)):
            self.uc.mem_map(start * _PAGE, (end - start) * _PAGE)
        for addr, _, data in segments:
            self.uc.mem_write(addr, data)  # file bytes; the rest (.bss, .stack) stays 0
        self.uc.mem_map(_STACK_TOP - _STACK_SIZE, _STACK_SIZE)
        self.uc.mem_map(_TRAP, _PAGE)
        self.uc.mem_write(_TRAP, b"\xfe\xe7")  # b . (never reached: emulation stops here)
        self.uc.hook_add(UC_HOOK_MEM_UNMAPPED, self._on_unmapped)
        self._counting = None
        self._decoded: dict[int, tuple[str, int, bool]] = {}
        self._last: tuple[int, int] | None = None

    def _on_unmapped(self, uc, access, address, size, value, user) -> bool:
        lo, hi = _PERIPHERALS
        if not lo <= address < hi:
            return False  # a wild pointer is an error, not something to paper over
        uc.mem_map(address & ~(_PAGE - 1), _PAGE)
        self.stats.unmapped_pages += 1
        return True

    def symbol(self, name: str) -> int:
        if name not in self.symbols:
            raise TinysmileError(f"{self.path}: no symbol {name} (not a tinysmile harness?)")
        return self.symbols[name]

    def read(self, addr: int, n: int) -> bytes:
        return bytes(self.uc.mem_read(addr, n))

    def write(self, addr: int, data: bytes) -> None:
        self.uc.mem_write(addr, data)

    def call(self, func: int, *args: int, count: bool = False, limit: int = 2_000_000_000) -> int:
        """Run func(args...) (at most 4 word arguments) to its return; returns r0."""
        from unicorn import UC_HOOK_CODE, UcError
        from unicorn.arm_const import (
            UC_ARM_REG_LR,
            UC_ARM_REG_PC,
            UC_ARM_REG_R0,
            UC_ARM_REG_R1,
            UC_ARM_REG_R2,
            UC_ARM_REG_R3,
            UC_ARM_REG_SP,
        )

        regs = (UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3)
        for reg, value in zip(regs, args):
            self.uc.reg_write(reg, value & 0xFFFFFFFF)
        self.uc.reg_write(UC_ARM_REG_SP, _STACK_TOP - 64)
        self.uc.reg_write(UC_ARM_REG_LR, _TRAP | 1)
        hook = None
        if count:
            hook = self.uc.hook_add(UC_HOOK_CODE, self._on_code)
            # Blocks translated before the hook existed would run uncounted.
            self.uc.ctl_flush_tb()
        self._last = None
        try:
            self.uc.emu_start(func | 1, _TRAP, count=limit)
        except UcError as exc:
            pc = self.uc.reg_read(UC_ARM_REG_PC)
            raise TinysmileError(
                f"{self.path}: the emulated call at 0x{func:08x} stopped at pc 0x{pc:08x}: {exc}"
            ) from None
        finally:
            if hook is not None:
                self.uc.hook_del(hook)
                self.uc.ctl_flush_tb()
        pc = self.uc.reg_read(UC_ARM_REG_PC)
        if pc != _TRAP:
            raise TinysmileError(
                f"{self.path}: the emulated call at 0x{func:08x} did not return within {limit:,} "
                f"instructions (pc 0x{pc:08x})"
            )
        if count and self._last is not None:
            self._settle(_TRAP)  # the return itself: a taken branch
        return self.uc.reg_read(UC_ARM_REG_R0)

    def _on_code(self, uc, address, size, user) -> None:
        self._settle(address)
        self._last = (address, size)

    def _settle(self, address: int | None) -> None:
        """Account the previous instruction, now that the next address says whether it
        branched."""
        prev = self._last
        if prev is None:
            return
        addr, size = prev
        kind = self._decoded.get(addr)
        if kind is None:
            kind = self._decoded[addr] = _classify(self.read(addr, size), addr)
        cls, n_regs, branches = kind
        taken = address is not None and address != addr + size
        if taken and branches:
            self.stats.taken_branches += 1
            cls = f"{cls}:taken"
        self.stats.instructions += 1
        self.stats.mix[cls, n_regs] += 1


def _runs(pages: list[int]):
    if not pages:
        return
    start = prev = pages[0]
    for p in pages[1:]:
        if p != prev + 1:
            yield start, prev + 1
            start = p
        prev = p
    yield start, prev + 1


_CS = None


def _capstone():
    global _CS
    if _CS is None:
        from capstone import CS_ARCH_ARM, CS_MODE_MCLASS, CS_MODE_THUMB, Cs

        _CS = Cs(CS_ARCH_ARM, CS_MODE_THUMB | CS_MODE_MCLASS)
        _CS.detail = True
    return _CS


_LOADS = ("ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrex", "ldrt", "ldrbt", "ldrht")
_STORES = ("str", "strb", "strh", "strex", "strt")
_MAC = ("mla", "mls", "smlal", "umlal")


def _classify(code: bytes, addr: int) -> tuple[str, int, bool]:
    """(class, registers moved for LDM/STM/PUSH/POP, can branch) of one instruction."""
    insns = list(_capstone().disasm(code, addr, 1))
    if not insns:
        return "unknown", 0, True
    ins = insns[0]
    m = ins.mnemonic.split(".")[0]
    base = m[:-2] if m[-2:] in _CONDS and m[:-2] in _BRANCHY else m
    ops = ins.op_str
    writes_pc = "pc" in ops.split(",")[0] or (base in ("pop", "ldm", "ldmia") and "pc" in ops)
    if base in ("b", "bl", "blx", "bx", "cbz", "cbnz", "tbb", "tbh"):
        return base if base in ("tbb", "tbh") else "branch", 0, True
    if base in ("push", "pop", "ldm", "ldmia", "ldmdb", "stm", "stmia", "stmdb", "vpush", "vpop"):
        regs = ops[ops.find("{") + 1 : ops.find("}")] if "{" in ops else ops
        n = len([r for r in regs.split(",") if r.strip()])
        return ("pop_pc" if writes_pc else "ldm_stm"), n, writes_pc
    if m.startswith(_LOADS) or m.startswith("vldr"):
        if m.startswith("ldrd"):
            return "ldrd", 0, writes_pc
        return ("load_pc" if writes_pc else "load"), 0, writes_pc
    if m.startswith(_STORES) or m.startswith("vstr"):
        return ("strd" if m.startswith("strd") else "store"), 0, False
    if m.startswith(("sdiv", "udiv")):
        return "divide", 0, False
    if m.startswith(_MAC):
        return "mac", 0, False
    if m.startswith("v"):
        return "fpu", 0, False
    if writes_pc:
        return "alu_pc", 0, True
    return "alu", 0, False


_CONDS = ("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt")
_CONDS += ("gt", "le", "al")
_BRANCHY = ("b", "bl", "bx", "blx")

# Cortex-M4 cycle counts (Arm Cortex-M4 Technical Reference Manual, r0p1, table 3-1
# "Cortex-M4 instruction set summary"), with P, the pipeline refill after a taken branch,
# taken as 2 (the manual: 1 to 3, by the target's alignment and width and whether the
# address was speculated) and no flash wait states (the Apollo3's flash cache hit on every
# fetch; a cold miss costs more). Multiplies, MACs (MLA, MLS, SMLAL...) and the DSP
# instructions (SMLAD, SXTB16, SSAT...) are single-cycle on the M4; divides take 2 to 12
# (here 7); a load or store is 2 cycles (neighbouring ones pipeline to 1 each; not modelled:
# an upper bound), LDRD/STRD 3, LDM/STM/PUSH/POP 1 + registers.
P = 2
CYCLES = {
    "alu": 1,
    "fpu": 1,
    "mac": 1,
    "divide": 7,
    "load": 2,
    "store": 2,
    "ldrd": 3,
    "strd": 3,
    "branch": 1,
    "branch:taken": 1 + P,
    "tbb": 2 + P,
    "tbh": 2 + P,
    "tbb:taken": 2 + P,
    "tbh:taken": 2 + P,
    "alu_pc": 1 + P,
    "alu_pc:taken": 1 + P,
    "load_pc": 2 + P,
    "load_pc:taken": 2 + P,
    "unknown": 1,
    "unknown:taken": 1 + P,
}
ASSUMPTIONS = [
    "Cortex-M4 TRM cycle counts per instruction class",
    f"pipeline refill P = {P} cycles after a taken branch (the TRM: 1 to 3)",
    "zero flash wait states: every fetch hits the flash cache",
    "loads and stores 2 cycles each (neighbours pipelining to 1 are not credited)",
    "divides 7 cycles (the TRM: 2 to 12, by operand values)",
    "no interrupts during the inference",
]


def estimate_cycles(mix: Counter) -> int:
    total = 0
    for (cls, n_regs), count in mix.items():
        if cls.startswith(("ldm_stm", "pop_pc")):
            per = 1 + max(n_regs, 1) + (P if cls.startswith("pop_pc") else 0)
        else:
            per = CYCLES.get(cls, CYCLES.get(cls.split(":")[0], 1))
        total += per * count
    return total


class HarnessModel:
    """The model as the linked harness binds it: setup once, then invoke per input."""

    def __init__(self, elf: str | Path):
        self.fw = LinkedFirmware(elf)
        fields = _HARNESS.unpack(self.fw.read(self.fw.symbol(HARNESS_SYMBOL), _HARNESS.size))
        info, self.invoke, _hooked, _board, self.input, self.output, *_rest = fields
        self.setup, _arena_used = fields[8], fields[9]
        _name, _sha, self.input_size, self.output_size = _INFO.unpack(
            self.fw.read(info, _INFO.size)
        )
        if self.setup:
            err = self.fw.call(self.setup)
            if err:
                raise TinysmileError(f"{elf}: the model's setup failed: {self._cstr(err)}")

    def _cstr(self, addr: int) -> str:
        raw = self.fw.read(addr, 200)
        return raw.split(b"\0", 1)[0].decode(errors="replace")

    def infer(self, x: bytes, count: bool = False) -> bytes:
        if len(x) != self.input_size:
            raise TinysmileError(
                f"input is {len(x)} bytes, the firmware's model takes {self.input_size}"
            )
        self.fw.write(self.input, x)
        self.fw.call(self.invoke, self.input, self.output, count=count)
        return self.fw.read(self.output, self.output_size)

    def profile(self, x: bytes) -> dict[str, Any]:
        """One counted inference: instructions, their mix and the estimated cycles."""
        self.fw.stats = RunStats()
        self.infer(x, count=True)
        s = self.fw.stats
        mix = Counter()
        for (cls, _n), c in s.mix.items():
            mix[cls] += c
        return {
            "instructions": s.instructions,
            "taken_branches": s.taken_branches,
            "mix": dict(sorted(mix.items(), key=lambda kv: -kv[1])),
            "cycles_estimate": estimate_cycles(s.mix),
        }
