"""The compile and run-host commands as a user runs them: without TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from models import build_smile_like

RUN = """
import sys
from tinysmile.cli import main
code = main(sys.argv[1:])
assert "tensorflow" not in sys.modules, "TensorFlow was imported"
sys.exit(code)
"""


def tinysmile(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUN, *args], capture_output=True, check=False, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def smile_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "smile_like.tflite"
    path.write_bytes(build_smile_like())
    return path


def test_compile_writes_c_and_reports_json(smile_model, tmp_path):
    proc = tinysmile(
        "compile", str(smile_model), "--out", str(tmp_path), "--prefix", "smile", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    c_text = (tmp_path / "smile_model.c").read_text()
    h_text = (tmp_path / "smile_model.h").read_text()
    assert "void smile_invoke(const int8_t *input, int8_t *output);" in h_text
    assert report["sha256"] in c_text and "malloc" not in c_text and "stdio" not in c_text
    assert report["macs"] == sum(layer["macs"] for layer in report["layers"]) > 0
    # conv 5x5 stride 2 on 64x64x1 into 8 channels: 32*32*8 outputs of 25 MACs
    assert report["layers"][0]["macs"] == 32 * 32 * 8 * 25
    assert report["arena_bytes"] >= max(layer["output_bytes"] for layer in report["layers"])
    assert report["layers"][report["peak_layer"]]["live_arena_bytes"] == max(
        layer["live_arena_bytes"] for layer in report["layers"]
    )


def test_compile_table_output(smile_model, tmp_path):
    proc = tinysmile("compile", str(smile_model), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "MACs" in proc.stdout and "peak at layer" in proc.stdout


def test_run_host_matches_litert(smile_model, tmp_path):
    x = np.random.default_rng(7).integers(-128, 128, (24, 1, 64, 64, 1), dtype=np.int8)
    np.save(tmp_path / "in.npy", x)
    out = tmp_path / "out.npy"
    proc = tinysmile(
        "run-host",
        str(smile_model),
        "--inputs",
        str(tmp_path / "in.npy"),
        "--output",
        str(out),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["bit_exact"] and result["matching_samples"] == 24
    from tinysmile.compiler.oracle import litert_reference

    y = np.load(out)
    assert y.dtype == np.int8 and y.shape == (24, 1, 1)
    np.testing.assert_array_equal(y, litert_reference(smile_model, x))


def test_help_explains_commands():
    proc = tinysmile("--help")
    assert proc.returncode == 0
    for name in ("compile", "run-host"):
        assert name in proc.stdout
    proc = tinysmile("compile", "--help")
    assert "--prefix" in proc.stdout and "--json" in proc.stdout


def test_compile_without_board_loads_no_device_code(smile_model, tmp_path):
    """The compiler does not know devices: a plain compile imports neither TensorFlow nor
    anything of tinysmile.device (board projects are the device side's, reached only with
    --board)."""
    code = (
        "import sys\n"
        "from tinysmile.cli import main\n"
        f"assert main(['compile', {str(smile_model)!r}, '--out', {str(tmp_path)!r}]) == 0\n"
        "loaded = sorted(m for m in sys.modules if m == 'tensorflow' or m.startswith("
        "('tinysmile.device', 'tinysmile.boards', 'tensorflow.')))\n"
        "assert not loaded, loaded\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
