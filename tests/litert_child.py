"""Run LiteRT BUILTIN_REF on many models in a child process, so that a model which crashes
LiteRT itself (mutated flatbuffers can) costs one restart, not the test session.

Usage (child side): python litert_child.py WORKDIR — reads WORKDIR/jobs.txt (one model path a
line) and WORKDIR/inputs.npy, writes MODEL.out.npy or MODEL.refused beside each model and
appends the model's line number to WORKDIR/done.txt as it goes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np


def run_all(models: list[Path], inputs: np.ndarray, workdir: Path) -> dict[Path, object]:
    """model -> int8 outputs (N, -1), "refused" (LiteRT would not load or run it), or
    "crashed" (LiteRT took the process down)."""
    np.save(workdir / "inputs.npy", inputs)
    results: dict[Path, object] = {}
    todo = list(models)
    while todo:
        (workdir / "jobs.txt").write_text("".join(f"{m}\n" for m in todo))
        done = workdir / "done.txt"
        done.write_text("")
        subprocess.run(
            [sys.executable, __file__, str(workdir)], capture_output=True, timeout=600, check=False
        )
        finished = len(done.read_text().split())
        for m in todo[:finished]:
            out = m.with_suffix(".out.npy")
            results[m] = np.load(out) if out.exists() else "refused"
        if finished < len(todo):
            results[todo[finished]] = "crashed"
            finished += 1
        todo = todo[finished:]
    return results


def _child(workdir: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tinysmile.compiler.oracle import litert_reference

    inputs = np.load(workdir / "inputs.npy")
    with open(workdir / "done.txt", "a") as done:
        for line in (workdir / "jobs.txt").read_text().split():
            model = Path(line)
            try:
                y = litert_reference(model.read_bytes(), inputs)
                np.save(model.with_suffix(".out.npy"), y.reshape(len(inputs), -1))
            except Exception as exc:  # noqa: BLE001 - any refusal by LiteRT is just "refused"
                model.with_suffix(".refused").write_text(str(exc))
            done.write(line + "\n")
            done.flush()


if __name__ == "__main__":
    _child(Path(sys.argv[1]))
