"""The repository must work from a fresh clone: nothing tracked may point outside it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tracked_links() -> list[tuple[str, str]]:
    # Mode 120000 is a symlink in git's index; its blob is the link target.
    out = subprocess.run(
        ["git", "ls-files", "-s", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    links = []
    for entry in filter(None, out.split("\0")):
        meta, path = entry.split("\t", 1)
        mode, blob, _stage = meta.split()
        if mode == "120000":
            target = subprocess.run(
                ["git", "cat-file", "blob", blob], cwd=ROOT, capture_output=True, check=True
            ).stdout.decode()
            links.append((path, target))
    return links


def _escapes(path: str, target: str) -> bool:
    if os.path.isabs(target):
        return True
    resolved = os.path.normpath(os.path.join(os.path.dirname(path), target))
    return resolved == ".." or resolved.startswith("../")


def test_escape_rule_catches_bad_links():
    # The rule itself, on made-up links, so the repository test below cannot pass vacuously.
    assert _escapes(".venv", "/tmp/venv")
    assert _escapes("a/b", "../../x")
    assert not _escapes("a/b", "../x")
    assert not _escapes("a/b", "c")


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout (an installed wheel)")
def test_no_tracked_symlink_points_outside_the_repository():
    bad = [(p, t) for p, t in _tracked_links() if _escapes(p, t)]
    assert not bad, f"tracked links that point outside the repository: {bad}"


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout (an installed wheel)")
def test_venv_is_not_tracked():
    out = subprocess.run(
        ["git", "ls-files", "--", ".venv"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out == ""


def test_setup_replaces_a_dangling_venv_link(tmp_path):
    # Run setup.sh's venv step in a scratch copy whose .venv is a dangling absolute link, as a
    # fresh clone of the old repository had. Only the venv lines are exercised (no installs).
    script = (ROOT / "scripts" / "setup.sh").read_text()
    start = script.index("PY=${PYTHON:-python3}")
    end = script.index("stamp=.venv/.tinysmile-installed")
    (tmp_path / "venv_step.sh").write_text("set -euo pipefail\n" + script[start:end])
    (tmp_path / ".venv").symlink_to(tmp_path / "does-not-exist")
    proc = subprocess.run(
        ["bash", "venv_step.sh"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "replacing a leftover .venv" in proc.stdout
    assert not (tmp_path / ".venv").is_symlink()
    assert (tmp_path / ".venv" / "bin" / "python").exists()


def test_the_tests_keep_emulator_state_out_of_the_users_cache():
    # tests/conftest.py: a state folder of the session's own, so that `flash` and `stop`
    # in the tests never touch an emulator the user started.
    from tinysmile.device.emulator import state_dir

    assert state_dir() != Path.home() / ".cache" / "tinysmile"
    assert state_dir().is_dir()
    # Under pytest-xdist (the default, pyproject's addopts), each worker's own: two workers
    # sharing one would flash, stop and talk to each other's emulator.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        assert state_dir().name == worker


def test_training_never_imports_the_search():
    """The search is a layer above training (DESIGN.md): no module of tinysmile/train
    imports tinysmile.search, at its top or inside a function. The command modules wire the
    layers (`quantize --search` asks the search for its record) and are left out."""
    import ast

    root = Path(__file__).resolve().parents[1] / "tinysmile" / "train"
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "commands.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(n == "tinysmile.search" or n.startswith("tinysmile.search.") for n in names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
    assert (root.parent / "search" / "search.py").is_file()  # the rule checks the right tree
