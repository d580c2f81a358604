"""`pip install .` (not only editable) must carry firmware/, templates/ and boards/."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_carries_data_folders(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("tinysmile-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("firmware", "templates", "boards"):
        for src in (ROOT / folder).rglob("*"):
            if src.is_file() and "__pycache__" not in src.parts:
                rel = src.relative_to(ROOT).as_posix()
                assert f"tinysmile/_data/{rel}" in names, rel
    assert "tinysmile/compiler/ops/conv2d.py" in names
    # The built-in architectures are data files inside the package.
    for arch in ("alexnet", "reduced-alexnet", "embedded3"):
        assert f"tinysmile/train/archs/{arch}.json" in names, arch
    # The rating page works offline: its page, script and style ship in the package.
    for name in ("index.html", "app.js", "app.css"):
        assert f"tinysmile/label/static/{name}" in names
