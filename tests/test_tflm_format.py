"""The firmware's printf for TFLite Micro's log (firmware/tflm/tsm_format.c: current TFLite
Micro leaves formatting its messages to the target, and newlib's vsnprintf would link
malloc), built for the host under ASan/UBSan and compared with the C library's vsnprintf:
TFLite Micro's messages, edge cases, and seeded random integer conversions."""

from __future__ import annotations

import re
import subprocess

import pytest
from device_helpers import TESTS, build_host, host_cc

from tinysmile.resources import firmware_dir

DRIVER = TESTS / "fixtures" / "tsm_format_check.c"
FORMAT = firmware_dir() / "tflm" / "tsm_format.c"
ITERATIONS = 20000

pytestmark = pytest.mark.skipif(host_cc() is None, reason="no host C compiler")


def _run(tmp_path, source):
    exe = build_host(
        tmp_path / "format_check", [DRIVER, source], extra=[f"-I{firmware_dir() / 'tflm'}"]
    )
    return subprocess.run(
        [str(exe), str(ITERATIONS), "20260301"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_format_is_the_c_librarys(tmp_path):
    res = _run(tmp_path, FORMAT)
    assert res.returncode == 0, res.stderr[-2000:]
    m = re.fullmatch(r"checked (\d+)\n", res.stdout)
    assert m and int(m.group(1)) > ITERATIONS, res.stdout


def test_driver_catches_a_broken_format(tmp_path):
    """The comparison can fail: hexadecimal digits printed in base 10."""
    src = FORMAT.read_text()
    broken = src.replace("*f == 'u' ? 10 : 16", "10")
    assert broken != src
    (tmp_path / "tsm_format.c").write_text(broken)
    res = _run(tmp_path, tmp_path / "tsm_format.c")
    assert res.returncode != 0
    assert "differs: " in res.stderr
