"""The device's frame parser, built for the host under ASan/UBSan, fuzzed.

A seeded random-frame driver always runs; libFuzzer runs too when clang provides it.
Each prints how many inputs it tried (see `pytest -s`)."""

from __future__ import annotations

import re
import subprocess

import pytest
from device_helpers import FUZZ, build_host, host_cc

from tinysmile.resources import firmware_dir

SOURCES = [FUZZ / "tsm_protocol_fuzz.c", firmware_dir() / "protocol" / "tsm_protocol.c"]
# A small bound so the fuzzers spend their time at and beyond it.
DEFINES = {"TSM_PROTO_MAX_PAYLOAD": "300u"}
ITERATIONS = 20000


def test_seeded_random_frames_under_sanitizers(tmp_path):
    if host_cc() is None:
        pytest.skip("no host C compiler")
    exe = build_host(tmp_path / "fuzz", SOURCES, DEFINES)
    res = subprocess.run(
        [str(exe), str(ITERATIONS), "20261123"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    m = re.search(r"inputs (\d+) frames (\d+) bytes (\d+)", res.stdout)
    assert m, res.stdout
    assert int(m.group(1)) == 2 * ITERATIONS
    assert int(m.group(2)) > ITERATIONS  # the structured streams did carry frames
    print(f"\nseeded driver: {m.group(1)} inputs, {m.group(2)} frames, {m.group(3)} bytes")


def test_driver_catches_a_broken_parser(tmp_path):
    # The fuzz driver must be able to fail: a parser that skips the payload CRC check
    # delivers corrupted frames, and the driver has to notice.
    if host_cc() is None:
        pytest.skip("no host C compiler")
    src = (firmware_dir() / "protocol" / "tsm_protocol.c").read_text()
    broken = src.replace(
        "if (crc != tsm_get_u32(p->buf + TSM_PROTO_HEADER_SIZE + length))", "if (0)"
    )
    assert broken != src
    (tmp_path / "tsm_protocol.c").write_text(broken)
    exe = build_host(
        tmp_path / "fuzz", [SOURCES[0], tmp_path / "tsm_protocol.c"], DEFINES, extra=["-Wno-error"]
    )
    res = subprocess.run(
        [str(exe), "2000", "1"], capture_output=True, text=True, timeout=300, check=False
    )
    assert res.returncode != 0
    assert "corrupted" in res.stderr or "never sent" in res.stderr or "lost" in res.stderr


def test_libfuzzer(tmp_path):
    try:
        exe = build_host(
            tmp_path / "libfuzz",
            SOURCES,
            {**DEFINES, "TSM_LIBFUZZER": "1"},
            sanitize="fuzzer,address,undefined",
            cc="clang",
        )
    except (subprocess.CalledProcessError, AssertionError, FileNotFoundError) as exc:
        pytest.skip(f"clang with libFuzzer unavailable: {exc}")
    runs = 20000
    res = subprocess.run(
        [str(exe), f"-runs={runs}", "-seed=1", "-max_len=2048"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    m = re.search(r"Done (\d+) runs", res.stderr)
    assert m, res.stderr[-2000:]
    assert int(m.group(1)) == runs
    print(f"\nlibFuzzer: {m.group(1)} inputs")
