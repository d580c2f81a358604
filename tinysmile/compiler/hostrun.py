"""Build the generated C with the host compiler and run it: parity without a board."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinysmile.compiler.api import CompileResult, compile_model
from tinysmile.errors import TinysmileError
from tinysmile.templating import render

CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-g"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


@dataclass
class HostBinary:
    path: Path
    compiled: CompileResult
    layer_hooks: bool

    def run(self, inputs: np.ndarray, timeout: float = 300.0) -> np.ndarray | list:
        """int8 inputs (batch first) -> int8 outputs (N, output size); with layer hooks,
        a list per input of every layer's output followed by the model output."""
        prog = self.compiled.program
        n = inputs.shape[0]
        data = np.ascontiguousarray(inputs, dtype=np.int8).reshape(n, -1)
        if data.shape[1] != prog.graph.input.size:
            raise TinysmileError(
                f"inputs have {data.shape[1]} values per sample, the model takes"
                f" {prog.graph.input.size}"
            )
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0", UBSAN_OPTIONS="print_stacktrace=1")
        proc = subprocess.run(
            [str(self.path)],
            input=data.tobytes(),
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            raise TinysmileError(
                f"the generated model crashed on the host (exit {proc.returncode}):"
                f" {proc.stderr.decode(errors='replace')[-2000:]}"
            )
        raw = np.frombuffer(proc.stdout, dtype=np.int8)
        out_size = prog.graph.output.size
        if not self.layer_hooks:
            return raw.reshape(n, out_size)
        sizes = [prog.graph.tensor(layer.op.outputs[0]).size for layer in prog.layers]
        per = sum(sizes) + out_size
        raw = raw.reshape(n, per)
        result = []
        for row in raw:
            parts, pos = [], 0
            for s in sizes + [out_size]:
                parts.append(row[pos : pos + s].copy())
                pos += s
            result.append(parts)
        return result


# Shared libraries called through ctypes (the Pi's native engine, HostBot, firmware/vision):
# -O2 without sanitizers, the production path; the host parity tests build the same C with
# ASan/UBSan (SANITIZE).
SHARED_FLAGS = ["-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror"]


def link_shared(
    lib: Path, sources: list[Path], includes: list[Path], flags: list[str], what: str
) -> Path:
    """Build C sources into the shared library `lib` with the host's compiler. It is
    written under a per-process name and renamed into place, so a half-built library never
    looks like a cached one and two processes building it at once do not collide."""
    lib.parent.mkdir(parents=True, exist_ok=True)
    tmp = lib.with_name(f"{lib.name}.{os.getpid()}.part")
    cmd = [host_compiler(), *flags, *[f"-I{d}" for d in includes]]
    cmd += [*map(str, sources), "-o", str(tmp), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise TinysmileError(
            f"{what} does not build as a shared library: " + proc.stderr.strip()[-2000:]
        )
    tmp.replace(lib)
    return lib


def host_compiler() -> str:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    raise TinysmileError("no C compiler found (install gcc: apt-get install gcc)")


def build_host(
    compiled: CompileResult,
    workdir: str | Path | None = None,
    sanitize: bool = True,
    layer_hooks: bool = False,
    extra_flags: list[str] | None = None,
) -> HostBinary:
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="tinysmile-host-"))
    work.mkdir(parents=True, exist_ok=True)
    main_c = work / f"{compiled.prefix}_host_main.c"
    main_c.write_text(
        render(
            "host/host_main.c.j2",
            prefix=compiled.prefix,
            macro=compiled.prefix.upper(),
            layer_hooks=layer_hooks,
        )
    )
    flags = CFLAGS + (SANITIZE if sanitize else []) + (extra_flags or [])
    if layer_hooks:
        flags.append("-DTSM_LAYER_HOOKS")
    sources = [main_c, compiled.c_path, *compiled.sources]
    key = hashlib.sha256(
        b"".join(p.read_bytes() for p in sources) + " ".join(flags).encode()
    ).hexdigest()[:16]
    exe = work / f"{compiled.prefix}_host_{key}"
    if not exe.exists():
        cmd = [host_compiler(), *flags]
        cmd += [f"-I{d}" for d in compiled.include_dirs]
        cmd += [str(s) for s in sources] + ["-o", str(exe), "-lm"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise TinysmileError(
                "the generated C does not compile on the host:\n" + proc.stderr[-4000:]
            )
    return HostBinary(exe, compiled, layer_hooks)


def compile_and_build(
    model: str | Path | bytes,
    workdir: str | Path | None = None,
    prefix: str = "model",
    sanitize: bool = True,
    layer_hooks: bool = False,
) -> HostBinary:
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="tinysmile-host-"))
    compiled = compile_model(model, work, prefix=prefix)
    return build_host(compiled, work, sanitize=sanitize, layer_hooks=layer_hooks)
