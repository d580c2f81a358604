"""The Pi mode on the Pi's own CPU: an arm64 Raspberry-Pi-like system (Debian bookworm arm64
under qemu-user as a Raspberry Pi 4's Cortex-A72, `scripts/pi_arm64.sh`), compared with this
machine byte for byte.

- `pi run --json` on frames with faces from 20 to 200 px and a frame without one: both
  engines (LiteRT; the native C, built there by the arm64 gcc), Haar, BlazeFace, BlazeFace
  aligned (the integer turned-square sampler) and the tiny finder: every field but the
  timings equal to this machine's;
- `pi run --mcu PORT` from the arm64 root to the emulated board running on this machine,
  through its pty: the board's decisions, then the Pi's own when the board is gone;
- the unit `pi install-service` writes there passes `systemd-analyze verify`, and its
  ExecStart, run as the unit's user after what systemd does first (the user's state
  directory), decides 20 frames and logs them.

Marked `arm64`; they run where the root is built (`bash scripts/pi_arm64.sh setup`, about 8
minutes, root; then `.venv/bin/python -m pytest -m arm64`) and are skipped elsewhere, CI
included: building the root does not fit the suite's budget.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "pi_arm64.sh"
SMILES = REPO.parent / "shared" / "datasets" / "smilesmiled" / "SMILEs"
FACE_SIDES = (20, 28, 36, 47, 64, 96, 140, 200)  # under, at and over the model's 48 px
SMALL_SIDES = (34, 38, 42, 46)  # in 160x120 frames


def _root() -> Path | None:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return None
    # `ready`: the root exists and its venv is pinned to this checkout's (a root set up for
    # another checkout, or before a dependency changed, is skipped as absent, not failed).
    ready = subprocess.run(["bash", str(SCRIPT), "ready"], capture_output=True, check=False)
    if ready.returncode != 0:
        return None
    out = subprocess.run(["bash", str(SCRIPT), "path"], capture_output=True, text=True, check=False)
    return Path(out.stdout.strip())


ROOT = _root()
pytestmark = [
    pytest.mark.arm64,
    pytest.mark.slow,
    pytest.mark.skipif(
        ROOT is None,
        reason="needs the arm64 root (as root: bash scripts/pi_arm64.sh setup)",
    ),
    pytest.mark.skipif(not SMILES.is_dir(), reason=f"SMILEsmileD not found at {SMILES}"),
]


def arm64(*cmd: str, binds: tuple[Path, ...] = (), check: bool = True, **kw):
    """CMD inside the arm64 root, these folders visible at their own paths."""
    args = ["bash", str(SCRIPT), "run"]
    for b in binds:
        args += ["--bind", str(b)]
    proc = subprocess.run([*args, "--", *cmd], capture_output=True, text=True, check=False, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} in arm64 exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def host(*cmd: str, check: bool = True):
    proc = subprocess.run(
        [sys.executable, "-m", "tinysmile", *cmd], capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def records(jsonl: str) -> tuple[list[dict], dict]:
    """The frames' records without their timings, and the summary without its rates."""
    lines = [json.loads(line) for line in jsonl.splitlines() if line.strip()]
    frames = [{k: v for k, v in r.items() if k != "ms"} for r in lines if "summary" not in r]
    summary = {k: v for k, v in lines[-1]["summary"].items() if k not in ("fps", "seconds")}
    return frames, summary


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> Path:
    """Scenes with a SMILEsmileD test face: 320x240 frames with faces of FACE_SIDES, 160x120
    ones with faces of SMALL_SIDES (a camera's small frame, where BlazeFace and the tiny
    finder still find faces smaller than the model's input), and one frame without a face."""
    import cv2

    from tinysmile.data.preprocess import load_image, to_gray
    from tinysmile.data.store import content_hash, split_for_hash
    from tinysmile.pi.scenes import make_scene

    folder = tmp_path_factory.mktemp("arm64-frames")
    files = [
        f
        for f in sorted((SMILES / "positives").rglob("*.jpg"))[:200]
        + sorted((SMILES / "negatives").rglob("*.jpg"))[:200]
        if split_for_hash(content_hash(f.read_bytes())) == "test"
    ]
    rng = np.random.default_rng(7)
    sizes = [((320, 240), s) for s in FACE_SIDES] + [((160, 120), s) for s in SMALL_SIDES]
    for i, (frame, side) in enumerate(sizes):
        crop = to_gray(load_image(files[(i * 7) % len(files)]))
        scene = make_scene(crop, rng, size=frame, face_side=(side, side))
        cv2.imwrite(str(folder / f"{i:03d}_{frame[0]}_{side}px.png"), scene.image)
    cv2.imwrite(str(folder / "999_none.png"), np.full((240, 320), 120, np.uint8))
    return folder


@pytest.mark.parametrize("engine", ["litert", "native"])
@pytest.mark.parametrize("detector", ["haar", "blazeface", "blazeface-aligned", "tiny"])
def test_pi_run_gives_the_same_bytes_on_arm64(frames, engine, detector):
    args = ["pi", "run", "--camera", f"folder:{frames}", "--no-gpio", "--json"]
    args += ["--engine", engine, "--detector", detector]
    here = records(host(*args).stdout)
    there = records(arm64("python3", "-m", "tinysmile", *args, binds=(frames,)).stdout)
    assert there == here
    found = [r for r in here[0] if r["face"] is not None]
    # The comparison covers decisions on faces, among them a crop smaller than the model's
    # 48 px input (enlarged: where OpenCV's resizes gave other bytes on aarch64), not only
    # "no face".
    assert len(found) >= 3 and any(r["crop"][2] < 48 for r in found), here[0]


def test_the_native_engine_is_built_by_the_arm64_gcc(frames):
    """The native engine's shared library in the root is an AArch64 ELF (e_machine 183),
    compiled there: the same C, another compiler and instruction set, the same bytes (the
    test above)."""
    args = ["pi", "run", "--camera", f"folder:{frames}", "--no-gpio", "--json"]
    arm64("python3", "-m", "tinysmile", *args, "--engine", "native", binds=(frames,))
    assert ROOT is not None
    # The root's state folder: this session's, made inside the root (scripts/pi_arm64.sh).
    libs = list((ROOT / os.environ["TINYSMILE_STATE_DIR"].lstrip("/")).rglob("*.so"))
    assert libs
    for lib in libs:
        head = lib.read_bytes()[:20]
        assert head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 183, lib


@pytest.mark.skipif(
    not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")),
    reason="needs qemu-system-arm and arm-none-eabi-gcc (scripts/setup.sh installs them)",
)
def test_mcu_offload_from_arm64_to_the_emulated_board(frames, tmp_path, monkeypatch):
    """The board (QEMU on this machine, the app firmware) answers the arm64 Pi through its
    pty; killed once the Pi has printed its third decision on a face, the Pi decides the
    rest itself: every frame decided once, the same bytes either way; a second run with the
    board gone decides every frame on the Pi."""
    from tinysmile.boards import load_board
    from tinysmile.bundle import load_bundle
    from tinysmile.device import emulator
    from tinysmile.device.pio import run_pio
    from tinysmile.device.project import generate_project
    from tinysmile.device.session import client_for

    monkeypatch.setenv("TINYSMILE_STATE_DIR", str(tmp_path / "state"))
    board = load_board("qemu-cortex-m4")
    bundle = load_bundle(None)
    project = generate_project(bundle, board, tmp_path / "fw", mode="app")
    run_pio(project)
    st = emulator.start(board, project.elf, "", register=False, icount=False)
    port = st.port
    args = ["pi", "run", "--camera", f"folder:{frames}", "--no-gpio", "--json"]
    args += ["--detector", "blazeface"]
    lines = []
    try:
        client = client_for(board, port)
        try:
            client.handshake()
        finally:
            client.close()
        cmd = ["bash", str(SCRIPT), "run", "--bind", str(frames), "--", "python3", "-m"]
        cmd += ["tinysmile", *args, "--mcu", port]
        env = {**os.environ, "PI_ARM64_ENV": "PYTHONUNBUFFERED=1"}
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) as proc:
            assert proc.stdout is not None
            faces = 0
            for line in proc.stdout:
                lines.append(line)
                faces += '"face": [' in line
                if faces == 3 and st is not None:
                    emulator.kill(st)  # the board dies mid-run
                    st = None
        assert proc.returncode == 0
    finally:
        if st is not None:
            emulator.kill(st)
    mid_run = records("".join(lines))
    alone = records(
        arm64("python3", "-m", "tinysmile", *args, "--mcu", port, binds=(frames,)).stdout
    )
    here = records(host(*args).stdout)[0]
    engines = [r["engine"] for r in mid_run[0] if r["face"]]
    n = len(engines)
    # The board's, then the Pi's: at least the three the board decided before it died, and
    # at least one after (the frame in flight may have gone either way).
    cut = engines.count("mcu")
    assert n >= 5 and 3 <= cut < n and engines == ["mcu"] * cut + ["litert"] * (n - cut)
    assert mid_run[1]["offload"]["failovers"] == 1
    assert [r["engine"] for r in alone[0] if r["face"]] == ["litert"] * n
    keys = ("source", "face", "crop", "output_int8", "smile")
    for got in (mid_run[0], alone[0]):
        assert [[r.get(k) for k in keys] for r in got] == [[r.get(k) for k in keys] for r in here]


def test_the_service_as_installed_decides_20_frames(tmp_path):
    """`pi install-service` in the root, for user pi, with the README's --log under
    /var/lib; systemd-analyze (this machine's) accepts the unit; what systemd does before
    ExecStart (the StateDirectory, owned by the user) then ExecStart itself as the user, in
    the unit's working directory with the environment systemd gives a User= service: 20
    frames decided and logged."""
    import shlex

    assert ROOT is not None
    # Frames where user pi can read them (this machine's /tmp/pytest-of-root is root's).
    many = ROOT / "srv" / "tinysmile-test-frames"
    shutil.rmtree(many, ignore_errors=True)
    many.mkdir(parents=True)
    for i, f in enumerate(sorted((SMILES / "positives").rglob("*.jpg"))[:24]):
        shutil.copy(f, many / f"{i:03d}.jpg")
    many.chmod(0o755)
    inside = "/srv/tinysmile-test-frames"
    units = tmp_path / "units"
    units.mkdir()
    # The package as a user installs it (a unit does not start with our PYTHONPATH).
    arm64(
        "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--force-reinstall", str(REPO)
    )
    arm64("sh", "-c", "id -u pi >/dev/null 2>&1 || useradd --create-home pi")
    log = "/var/lib/tinysmile-bot-test"
    arm64("rm", "-rf", log)
    run_args = ["--camera", f"folder:{inside}", "--no-gpio", "--detector", "none"]
    run_args += ["--max-frames", "20", "--log", log]
    install = ["tinysmile", "pi", "install-service", "--unit-dir", str(units), "--user", "pi"]
    arm64(*install, "--", *run_args, binds=(units,))
    unit = (units / "tinysmile-bot.service").read_text()
    if shutil.which("systemd-analyze"):
        proc = subprocess.run(
            ["systemd-analyze", "verify", str(units / "tinysmile-bot.service")],
            check=False,
            capture_output=True,
            text=True,
        )
        # The unit names the root's /opt/venv/bin/tinysmile, which this machine lacks.
        complaints = [ln for ln in proc.stderr.splitlines() if "/opt/venv" not in ln]
        assert complaints == [], proc.stderr
    fields = dict(ln.split("=", 1) for ln in unit.splitlines() if "=" in ln)
    assert fields["User"] == "pi" and fields["StateDirectory"] == "tinysmile-bot-test"
    assert fields["ExecStart"].startswith("/opt/venv/bin/tinysmile pi run ")
    # systemd: the StateDirectory made and given to the user; then ExecStart as the user,
    # in WorkingDirectory, with HOME, USER, LOGNAME, SHELL and a default PATH only.
    arm64("install", "-d", "-o", "pi", f"/var/lib/{fields['StateDirectory']}")
    env = ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/pi", "USER=pi", "LOGNAME=pi"]
    cmd = f"cd {shlex.quote(fields['WorkingDirectory'])} && exec {fields['ExecStart']}"
    proc = arm64("runuser", "-u", "pi", "--", "env", "-i", *env, "SHELL=/bin/sh", "sh", "-c", cmd)
    assert proc.stdout.startswith("20 frames, 20 with a face"), proc.stdout + proc.stderr
    entries = [p for p in (ROOT / log.lstrip("/")).iterdir() if not p.name.startswith(".")]
    assert len(entries) == 20
    assert all((e / "crop.png").is_file() and (e / "entry.json").is_file() for e in entries)
