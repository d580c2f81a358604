"""Host/device parity: every output byte of N inputs against LiteRT (BUILTIN_REF); on a
mismatch, the layers are read back to name the first one that differs, and where."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinysmile.device.client import DeviceClient, DeviceError
from tinysmile.errors import TinysmileError

# What a runtime without per-layer outputs (TFLite Micro) answers to LAYER.
_NO_LAYERS = "not supported by this runtime"


@dataclass
class LayerDiff:
    layer: int
    kind: str
    shape: list[int]
    index: list[int]  # coordinates of the first differing element
    device: int
    host: int
    differing: int  # how many elements differ in that layer
    size: int


@dataclass
class Mismatch:
    sample: int
    output_index: list[int]
    device: int
    host: int
    differing: int
    first_layer: LayerDiff | None = None
    note: str = ""


@dataclass
class VerifyResult:
    samples: int = 0
    matched: int = 0
    stamps: list[tuple[int, int]] = field(default_factory=list)  # (start, end) per INFER
    mismatches: list[Mismatch] = field(default_factory=list)
    retries: int = 0
    resets_seen: int = 0

    @property
    def ok(self) -> bool:
        return self.samples > 0 and self.matched == self.samples and not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def random_inputs(shape: tuple[int, ...], n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, size=(n, *shape), dtype=np.int16).astype(np.int8)


def image_inputs(
    bundle, data_dir: str | Path, n: int, scale: float, zero_point: int, shape: tuple[int, ...]
) -> np.ndarray:
    """Up to n images from data_dir through the bundle's own preprocessing."""
    from tinysmile.data.preprocess import PreprocessSpec, load_image, preprocess, to_int8

    spec = PreprocessSpec.from_dict(bundle.preprocess)
    exts = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".webp"}
    files = sorted(p for p in Path(data_dir).rglob("*") if p.suffix.lower() in exts)
    if not files:
        raise TinysmileError(f"{data_dir}: no images found")
    out = []
    for path in files[:n]:
        x = to_int8(spec, preprocess(spec, load_image(path)), scale, zero_point)
        if x.size != int(np.prod(shape)):
            raise TinysmileError(
                f"{path}: preprocessing gives {x.size} values, the model takes "
                f"{int(np.prod(shape))} (bundle spec and model disagree)"
            )
        out.append(x.reshape(shape))
    return np.stack(out)


def expected_outputs(model_path: Path, report: dict[str, Any], inputs: np.ndarray) -> np.ndarray:
    from tinysmile.compiler.oracle import litert_reference

    kw: dict[str, Any] = {}
    if report.get("stripped_edges"):
        # Float-edged model: the device sees the int8 tensors inside the QUANTIZE/DEQUANTIZE.
        kw["input_quant"] = (report["input"]["scale"], report["input"]["zero_point"])
        kw["output_quant"] = (report["output"]["scale"], report["output"]["zero_point"])
    return litert_reference(model_path, inputs, **kw)


def _first_diff(dev: np.ndarray, host: np.ndarray) -> tuple[list[int], int, int, int]:
    diff = np.flatnonzero(dev.reshape(-1) != host.reshape(-1))
    i = int(diff[0])
    coords = [int(c) for c in np.unravel_index(i, host.shape)]
    return coords, int(dev.reshape(-1)[i]), int(host.reshape(-1)[i]), int(diff.size)


def locate_layer(client: DeviceClient, program, x: np.ndarray) -> LayerDiff | None:
    """Read every layer back for input x; the first that differs from the host reference."""
    from tinysmile.compiler.reference import reference_layers

    refs = reference_layers(program, x)
    kinds = [layer.op.kind for layer in program.layers]
    raw = x.astype(np.int8).tobytes()
    for i, ref in enumerate(refs):
        # Layer 0 first: a runtime without layer outputs refuses it (DeviceError).
        data = client.layer(raw, i, size_hint=ref.size + 10)
        if i == 0 and client.hello and client.hello.num_layers != len(refs):
            raise TinysmileError(
                f"device reports {client.hello.num_layers} layers, the host model has {len(refs)}"
            )
        dev = np.frombuffer(data, dtype=np.int8)
        if dev.size != ref.size:
            raise TinysmileError(f"layer {i}: device sent {dev.size} bytes, expected {ref.size}")
        dev = dev.reshape(ref.shape)
        if not np.array_equal(dev, ref):
            coords, d, h, n = _first_diff(dev, ref)
            return LayerDiff(i, kinds[i], list(ref.shape), coords, d, h, n, int(ref.size))
    return None


def verify(
    client: DeviceClient,
    model_path: Path,
    program,
    report: dict[str, Any],
    inputs: np.ndarray,
    progress: Callable[[int, int], None] | None = None,
    locate: bool = True,
) -> VerifyResult:
    expected = expected_outputs(model_path, report, inputs)
    res = VerifyResult()
    located = False
    for i, x in enumerate(inputs):
        reply = client.infer(x.astype(np.int8).tobytes())
        got = np.frombuffer(reply.output, dtype=np.int8).reshape(expected[i].shape)
        res.samples += 1
        res.stamps.append((reply.start_ticks, reply.end_ticks))
        if np.array_equal(got, expected[i]):
            res.matched += 1
        else:
            coords, d, h, n = _first_diff(got, expected[i])
            mm = Mismatch(i, coords, d, h, n)
            if locate and not located:
                # One layer walk names the culprit; more would only cost time.
                located = True
                try:
                    mm.first_layer = locate_layer(client, program, x)
                    if mm.first_layer is None:
                        mm.note = (
                            "every layer matches tinysmile's reference, which then differs "
                            "from LiteRT: a compiler reference bug, not the device"
                        )
                except DeviceError as exc:
                    if _NO_LAYERS not in str(exc):
                        raise
                    mm.note = (
                        "the device's runtime cannot hand out layer outputs (LAYER is not "
                        "supported by this runtime): the first differing layer cannot be named"
                    )
            res.mismatches.append(mm)
        if progress:
            progress(i + 1, len(inputs))
    res.retries = client.retried
    res.resets_seen = client.resets_seen
    return res


def verify_linked(
    elf: Path,
    model_path: Path,
    report: dict[str, Any],
    inputs: np.ndarray,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyResult:
    """verify() without a board: the linked firmware's own model entry (the harness's
    binding, read from the ELF) on a Cortex-M4 instruction-set emulator."""
    from tinysmile.device.isasim import HarnessModel

    expected = expected_outputs(model_path, report, inputs)
    model = HarnessModel(elf)
    res = VerifyResult()
    for i, x in enumerate(inputs):
        out = model.infer(x.astype(np.int8).tobytes())
        got = np.frombuffer(out, dtype=np.int8).reshape(expected[i].shape)
        res.samples += 1
        if np.array_equal(got, expected[i]):
            res.matched += 1
        else:
            coords, d, h, n = _first_diff(got, expected[i])
            res.mismatches.append(
                Mismatch(
                    i,
                    coords,
                    d,
                    h,
                    n,
                    note="the linked firmware on the instruction-set emulator (no layer walk)",
                )
            )
        if progress:
            progress(i + 1, len(inputs))
    return res
