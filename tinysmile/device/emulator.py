"""The emulated board's process: boot QEMU with the UART on a pty, remember it, stop it.

State lives in one JSON file per board under the state folder (``$TINYSMILE_STATE_DIR``,
default ``~/.cache/tinysmile``): pid, pty path, firmware, model hash. flash writes it
(through the PlatformIO upload step, which runs ``python -m tinysmile.device.emulator
start``), verify/profile read it, ``tinysmile stop`` ends the process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tinysmile.boards import Board, load_board
from tinysmile.errors import TinysmileError

_PTY_LINE = re.compile(r"char device redirected to (\S+)")


def state_dir() -> Path:
    d = os.environ.get("TINYSMILE_STATE_DIR")
    return Path(d) if d else Path.home() / ".cache" / "tinysmile"


def state_path(board_id: str) -> Path:
    return state_dir() / f"emulator-{board_id}.json"


@dataclass
class EmulatorState:
    board: str
    pid: int
    port: str
    elf: str
    model_sha256: str
    log: str
    started: float

    def alive(self) -> bool:
        return pid_alive(self.pid)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); reap it if so.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def qemu_command(board: Board, elf: Path, icount: bool = True) -> list[str]:
    q = board.qemu
    if not q:
        raise TinysmileError(f"board {board.id} is not an emulated board")
    cmd = [q.get("system", "qemu-system-arm"), "-M", q["machine"], *q.get("extra_args", [])]
    if icount and "icount_shift" in q:
        # sleep=off: virtual time follows instructions only, never the host's clock.
        cmd += ["-icount", f"shift={q['icount_shift']},sleep=off"]
    cmd += ["-serial", "pty", "-kernel", str(elf)]
    return cmd


def read_state(board_id: str) -> EmulatorState | None:
    path = state_path(board_id)
    try:
        st = EmulatorState(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if not st.alive():
        path.unlink(missing_ok=True)
        return None
    return st


def start(
    board: Board, elf: Path, model_sha256: str = "", register: bool = True, icount: bool = True
) -> EmulatorState:
    """Boot the firmware. register=True (flash): it becomes the board's emulator, replacing
    any running one, and is recorded for verify/profile/stop. register=False (verify and
    profile's own): left alone by others; the caller ends it with kill().
    icount=False runs faster but its tick counts mean nothing (parity-only runs)."""
    if register:
        stop(board.id)
    elf = Path(elf).resolve()
    if not elf.is_file():
        raise TinysmileError(f"{elf}: no such firmware image")
    sdir = state_dir()
    sdir.mkdir(parents=True, exist_ok=True)
    log_path = sdir / (
        f"emulator-{board.id}.log"
        if register
        else f"emulator-{board.id}-{os.getpid()}-{time.monotonic_ns()}.log"
    )
    cmd = qemu_command(board, elf, icount)
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives `pio run -t upload` and the flash command
        )
    except FileNotFoundError:
        raise TinysmileError(f"{cmd[0]} not found: run scripts/setup.sh") from None
    finally:
        log.close()
    deadline = time.monotonic() + float(board.qemu.get("boot_timeout_s", 10.0))
    port = None
    try:
        while time.monotonic() < deadline:
            m = _PTY_LINE.search(log_path.read_text(errors="replace"))
            if m:
                port = m.group(1)
                break
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        # Not booted (or Ctrl-C while booting): QEMU runs in a session of its own, so no
        # terminal signal reaches it; it is ended here or never.
        if port is None and proc.poll() is None:
            proc.kill()
            proc.wait(5)
    if port is None:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        raise TinysmileError(f"QEMU did not start: {' | '.join(tail) or 'no output'}")
    st = EmulatorState(board.id, proc.pid, port, str(elf), model_sha256, str(log_path), time.time())
    _procs[proc.pid] = proc
    if register:
        state_path(board.id).write_text(json.dumps(asdict(st), indent=2) + "\n")
    return st


_procs: dict[int, subprocess.Popen] = {}


def kill(st: EmulatorState, timeout: float = 5.0) -> None:
    """End an emulator this process started (and reap it)."""
    proc = _procs.pop(st.pid, None)
    if proc is None:
        if st.alive() and _is_qemu(st.pid):
            os.kill(st.pid, signal.SIGTERM)
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    if f"-{os.getpid()}-" in Path(st.log).name:
        Path(st.log).unlink(missing_ok=True)


def stop(board_id: str | None = None, timeout: float = 5.0) -> list[EmulatorState]:
    """Stop the emulator of board_id (all boards when None); returns what was stopped."""
    paths = [state_path(board_id)] if board_id else sorted(state_dir().glob("emulator-*.json"))
    stopped = []
    for path in paths:
        try:
            st = EmulatorState(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if st.alive() and _is_qemu(st.pid):
            os.kill(st.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while st.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if st.alive():
                os.kill(st.pid, signal.SIGKILL)
            stopped.append(st)
        path.unlink(missing_ok=True)
    return stopped


def _is_qemu(pid: int) -> bool:
    # Never signal a recycled pid that now belongs to something else.
    try:
        exe = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return True  # no /proc (macOS): trust the state file
    return b"qemu" in Path(exe.decode(errors="replace")).name.encode()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinysmile.device.emulator")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="boot a firmware image (the emulated board's upload step)")
    s.add_argument("--board", required=True)
    s.add_argument("--elf", required=True)
    s.add_argument("--model-sha256", default="")
    t = sub.add_parser("stop")
    t.add_argument("--board")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "start":
            st = start(load_board(args.board), Path(args.elf), args.model_sha256)
            print(f"emulator running: pid {st.pid}, serial port {st.port}")
        else:
            for st in stop(args.board):
                print(f"stopped emulator pid {st.pid} ({st.board})")
    except TinysmileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
