"""On the emulated Cortex-M4 (real QEMU, real firmware built with PlatformIO): parity with
LiteRT for the compiler's test models, a perturbed build caught at the right layer, and
repeatable instruction counts. Firmware is built once per model per session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest

from tinysmile.boards import load_board
from tinysmile.bundle import load_bundle
from tinysmile.compiler.ops import conv2d as conv2d_op
from tinysmile.errors import TinysmileError

BOARD = "qemu-cortex-m4"
SAMPLES = 64

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")),
        reason="needs qemu-system-arm and arm-none-eabi-gcc (scripts/setup.sh installs them)",
    ),
]


# Module scope: the state folder set here, and the emulator stopped at the end, stay with
# this file; the files a worker runs after it get the session's folder back.
@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tinysmile-state")
    old = os.environ.get("TINYSMILE_STATE_DIR")
    os.environ["TINYSMILE_STATE_DIR"] = str(d)
    yield d
    from tinysmile.device import emulator

    emulator.stop()
    if old is None:
        os.environ.pop("TINYSMILE_STATE_DIR", None)
    else:
        os.environ["TINYSMILE_STATE_DIR"] = old


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from models import (
        build_depthwise_shapes,
        build_dscnn,
        build_edge_ops,
        build_kernel_shapes,
        build_mobilenet_block,
        build_random_chain,
        build_smile_like,
    )
    from test_compiler_wild import hello_world_dynamic_batch

    d = tmp_path_factory.mktemp("models")
    out = {}
    for name, build in (
        ("smile_like", build_smile_like),
        ("mobilenet_block", build_mobilenet_block),
        ("kernel_shapes", build_kernel_shapes),
        # depthwise other than 3x3: one channel with multiplier 8 (the tiled convolution),
        # 5x5, 7x1, 1x5 at stride 3 with channels past a group of 4 (kxk)
        ("depthwise_shapes", build_depthwise_shapes),
        ("edge_ops", build_edge_ops),
        # issue 10's keyword spotter: 16-channel depthwise and pointwise blocks, the x4
        # average pool over a 25x5 map, a dense head (0.33 M MACs, small enough for CI)
        ("dscnn", build_dscnn),
        # TFLite Micro's hello_world as converters write it: batch -1 in the signature.
        ("hello_world_dyn", hello_world_dynamic_batch),
        # seeded random chains of conv / depthwise layers: the written-out DSP loops on
        # shapes nobody chose (tests/models.py, random_chain_layers)
        ("random_chain2", lambda: build_random_chain(2)),
        ("random_chain4", lambda: build_random_chain(4)),
    ):
        path = d / f"{name}.tflite"
        path.write_bytes(build())
        out[name] = path
    return out


class Built:
    def __init__(self, project, host):
        self.project = project
        self.host = host  # CompileResult of the unperturbed model: the host's view


@pytest.fixture(scope="module")
def firmware(state_dir, models):
    from tinysmile.compiler.api import compile_model
    from tinysmile.device.session import build

    board = load_board(BOARD)
    cache: dict = {}

    def get(name: str, perturb_layer: int | None = None) -> Built:
        """name@tiled: the model with int8 conv filters (the tiled variant) where its size
        would give it int16 ones (tiled16)."""
        key = (name, perturb_layer)
        if key not in cache:
            model, _, variant = name.partition("@")
            budget = 0 if variant == "tiled" else conv2d_op.WIDE_FILTER_BYTES
            bundle = load_bundle(models[model])
            with mock.patch.object(conv2d_op, "WIDE_FILTER_BYTES", budget):
                project = build(
                    bundle,
                    board,
                    out_dir=state_dir / f"proj-{name}-{perturb_layer}",
                    perturb_layer=perturb_layer,
                )
                host = compile_model(bundle.model_path, state_dir / f"host-{name}")
            cache[key] = Built(project, host)
        return cache[key]

    return get


@contextmanager
def running(built: Built, icount: bool = False):
    # Parity does not depend on timing, and QEMU runs about twice as fast without -icount;
    # the profile test turns it on.
    from tinysmile.device import emulator
    from tinysmile.device.session import client_for

    board = load_board(BOARD)
    st = emulator.start(
        board, built.project.elf, built.project.model_sha256, register=False, icount=icount
    )
    client = client_for(board, st.port)
    try:
        client.handshake()
        yield client
    finally:
        client.close()
        emulator.kill(st)


def _verify(built: Built, client, n: int, seed: int = 0):
    from tinysmile.device.verify import random_inputs, verify

    report = built.host.report
    inputs = random_inputs(tuple(report["input"]["shape"]), n, seed)
    return verify(client, built.project.bundle.model_path, built.host.program, report, inputs)


# kernel_shapes: the DSP variants (SXTB16/SMLAD, SSUB8/SEL) on the shapes they are chosen
# for; the host tests run the same kernels with the instructions' C twins. depthwise_shapes:
# the depthwise variants other than 3x3 (tiled on one channel, kxk). edge_ops: the
# ops the other models lack, so that every supported op runs on the board. dscnn: a whole
# benchmark model, with the x4 average pool (SXTAB16). random_chain*: seeded random shapes.
@pytest.mark.parametrize(
    "name",
    [
        "smile_like",
        "mobilenet_block",
        "kernel_shapes",
        "depthwise_shapes",
        "edge_ops",
        "dscnn",
        "hello_world_dyn",
        "random_chain2",
        "random_chain4",
        "dscnn@tiled",
        "random_chain2@tiled",
    ],
)
def test_bit_exact_on_the_emulator(firmware, name):
    built = firmware(name)
    with running(built) as client:
        hello = client.hello
        assert hello.model_sha256 == built.project.bundle.model_hash()
        assert hello.board == BOARD
        assert hello.num_layers == len(built.host.report["layers"])
        assert hello.arena_size == built.host.report["arena_bytes"]
        res = _verify(built, client, SAMPLES, seed=11)
    assert res.samples == SAMPLES
    assert res.mismatches == []
    assert res.matched == SAMPLES
    assert res.ok
    ops = set(built.host.report["ops"])
    if name == "edge_ops":
        assert {"PAD", "AVERAGE_POOL_2D", "CONCATENATION", "RELU", "RELU6", "QUANTIZE"} <= ops
    elif name != "hello_world_dyn":
        # small models take int16 conv filters, unless told otherwise (name@tiled)
        conv = "tiled" if name.endswith("@tiled") else "tiled16"
        assert conv in {r["variant"] for r in built.host.report["layers"]}


def _first_layer_of(report, kind: str) -> int:
    return next(r["layer"] for r in report["layers"] if r["kind"] == kind)


# Which layer to perturb: ones whose change reaches the outputs of these seeded inputs (a
# weight change can vanish in pooling or a saturated sigmoid; then nothing is wrong to
# catch). The first conv of the smile net, the dense layer of the block.
@pytest.mark.parametrize(
    "name,kind", [("smile_like", "CONV_2D"), ("mobilenet_block", "FULLY_CONNECTED")]
)
def test_perturbed_build_is_caught_at_the_right_layer(firmware, name, kind):
    layer = _first_layer_of(firmware(name).host.report, kind)
    built = firmware(name, perturb_layer=layer)
    with running(built) as client:
        res = _verify(built, client, 16, seed=3)
    assert not res.ok
    first = res.mismatches[0].first_layer
    assert first is not None
    assert first.layer == layer
    assert first.kind == built.host.report["layers"][layer]["kind"]
    assert first.device != first.host


def test_profile_is_repeatable(firmware):
    from tinysmile.device.profile import profile

    built = firmware("smile_like")
    board = load_board(BOARD)
    report = built.host.report
    with running(built, icount=True) as client:
        a = profile(client, board, report)
        b = profile(client, board, report)
    assert a.total > 0
    assert a.total == b.total
    assert [layer.count for layer in a.layers] == [layer.count for layer in b.layers]
    assert len(a.layers) == len(report["layers"])
    assert all(layer.count > 0 for layer in a.layers)
    # The hooked run costs more than the plain one, but not much (a few per layer).
    assert a.total < a.hooked_total < a.total + 200 * len(a.layers)
    assert [layer.macs for layer in a.layers] == [r["macs"] for r in report["layers"]]


def test_another_model_is_refused(firmware, models, tmp_path):
    from tinysmile.device import emulator
    from tinysmile.device.session import connect

    built = firmware("mobilenet_block")
    board = load_board(BOARD)
    st = emulator.start(board, built.project.elf, built.project.model_sha256, register=False)
    try:
        with (
            pytest.raises(TinysmileError, match="runs model .* flash it first"),
            connect(board, load_bundle(models["smile_like"]), port=st.port),
        ):
            pass
    finally:
        emulator.kill(st)


def test_cli_flash_verify_profile_stop_without_tensorflow(firmware, models, state_dir):
    # The user's path, in a fresh interpreter that must never import TensorFlow.
    firmware("smile_like")  # warm PlatformIO's build folder for this model
    model = str(models["smile_like"])
    code = (
        "import sys, json\n"
        "from tinysmile.cli import main\n"
        f"assert main(['flash', {model!r}, '--board', {BOARD!r}, '--json']) == 0\n"
        f"assert main(['verify', {model!r}, '--samples', '4', '--json']) == 0\n"
        f"assert main(['profile', {model!r}, '--json']) == 0\n"
        "assert main(['stop']) == 0\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
    )
    # A temporary folder of its own, to see that nothing is left in it afterwards.
    tmp = state_dir / "cli-tmp"
    tmp.mkdir()
    env = dict(os.environ, TINYSMILE_STATE_DIR=str(state_dir / "cli"), TMPDIR=str(tmp))
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    outs = [json.loads(chunk) for chunk in _json_objects(res.stdout)]
    flashed, verified, profiled = outs[:3]
    assert flashed["board"] == BOARD and flashed["port"].startswith("/dev/")
    assert verified["ok"] is True and verified["matched"] == 4
    assert verified["port"] == flashed["port"]  # reused the flashed emulator
    assert profiled["total"] > 0 and len(profiled["layers"]) > 0
    assert not list((state_dir / "cli").glob("emulator-*.json"))  # stop removed the state
    from tinysmile.device.emulator import pid_alive

    assert not pid_alive(flashed["pid"])
    assert sorted(p.name for p in tmp.iterdir()) == [], "flash/verify/profile left files in TMPDIR"


def _qemu_pids_under(folder) -> list[int]:
    pids = []
    for proc in os.listdir("/proc"):
        if proc.isdigit():
            try:
                raw = Path(f"/proc/{proc}/cmdline").read_bytes()
            except OSError:
                continue
            cmdline = raw.decode(errors="replace")
            if "qemu-system-arm" in cmdline and str(folder) in cmdline:
                pids.append(int(proc))
    return pids


@pytest.mark.parametrize("pause", [0.0, 2.0], ids=["while-booting", "while-verifying"])
def test_interrupted_verify_leaves_nothing_behind(firmware, models, state_dir, pause):
    # Ctrl-C in the middle of a verify that booted its own emulator: the emulator is
    # stopped and the temporary folder is as it was. At once, the signal lands while QEMU
    # is starting up, before it has printed its pty (QEMU runs in a session of its own,
    # so only verify can end it); two seconds on, in the inference loop.
    import signal
    import time

    firmware("smile_like")
    tmp = state_dir / f"interrupt-tmp-{pause}"
    tmp.mkdir()
    states = state_dir / f"interrupt-{pause}"
    env = dict(os.environ, TINYSMILE_STATE_DIR=str(states), TMPDIR=str(tmp))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            # A suite started in the background of a shell without job control inherits an
            # ignored SIGINT, and Python then installs no KeyboardInterrupt: give verify
            # the Ctrl-C of a terminal.
            (
                "import runpy, signal, sys; signal.signal(signal.SIGINT, "
                "signal.default_int_handler); sys.argv[0] = 'tinysmile'; "
                "runpy.run_module('tinysmile', run_name='__main__')"
            ),
            "verify",
            str(models["smile_like"]),
            "--samples",
            "100000",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not _qemu_pids_under(states) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            time.sleep(0.01)
        assert _qemu_pids_under(states), "the emulator never started"
        time.sleep(pause)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "Traceback" not in err, err[-2000:]
    time.sleep(0.5)
    assert _qemu_pids_under(states) == [], "the interrupted verify left its emulator running"
    assert sorted(p.name for p in tmp.iterdir()) == [], "an interrupted verify left temp files"


def _json_objects(text: str) -> list[str]:
    dec = json.JSONDecoder()
    out, i = [], 0
    while True:
        j = text.find("{", i)
        if j < 0:
            return out
        obj, end = dec.raw_decode(text, j)
        out.append(json.dumps(obj))
        i = end


def test_shape_computing_model_refused_before_building(state_dir, tmp_path):
    from models import cached
    from test_compiler_wild import _conv_flatten

    from tinysmile.device.commands import run_verify

    path = tmp_path / "flatten.tflite"
    path.write_bytes(cached("conv_flatten_dyn", _conv_flatten, (None, 8, 8, 1)))
    with pytest.raises(TinysmileError, match="dynamic shape computation"):
        run_verify(str(path), BOARD, None, 4, None, seed=0)


def test_verify_exit_status_on_mismatch(firmware, models, state_dir):
    from tinysmile.device.commands import run_verify

    layer = _first_layer_of(firmware("smile_like").host.report, "CONV_2D")
    firmware("smile_like", perturb_layer=layer)
    res = run_verify(str(models["smile_like"]), BOARD, None, 16, None, seed=3, perturb_layer=layer)
    assert res["ok"] is False
    assert res["mismatches"][0]["first_layer"]["layer"] == layer


def test_budget_covers_what_the_linker_placed(firmware):
    """The budget checked before building is an estimate; the linker's section sizes of the
    built firmware are the facts it must cover (arena, serial buffers and stack are all in
    it; the rest is the port's and protocol's few statics)."""
    from tinysmile.device.pio import elf_sizes

    project = firmware("smile_like").project
    s = elf_sizes(project.elf)
    ram = s.get(".data", 0) + s.get(".bss", 0) + s[".stack"]
    budget = project.budget
    assert budget.runtime == "native" and s[".stack"] == budget.ram["stack"]
    assert budget.ram_total <= ram <= budget.ram_total + 2048
    assert s[".text"] <= budget.flash["code"]
    assert budget.flash["weights"] <= s[".rodata"]
