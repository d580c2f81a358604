"""Run a model bundle with LiteRT, with the bundle's own preprocessing.

Only `ai_edge_litert` is used (never TensorFlow), so predict/evaluate and the Pi
runtime stay light. The interpreter uses TFLite's reference kernels
(BUILTIN_REF): they are the oracle the C compiler is bit-exact with, so a decision
made here at the int8 threshold is the decision the device makes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tinysmile.bundle import Bundle, load_bundle
from tinysmile.data.preprocess import (
    PreprocessSpec,
    load_image,
    to_int8,
    whole_image_crop,
)
from tinysmile.errors import TinysmileError


def spec_for(bundle: Bundle, input_details: dict[str, Any]) -> PreprocessSpec:
    """The bundle's spec; for a bare .tflite one derived from its input tensor."""
    if bundle.preprocess:
        return PreprocessSpec.from_dict(bundle.preprocess)
    shape = [int(d) for d in input_details["shape"]]
    if len(shape) != 4 or shape[3] != 1:
        raise TinysmileError(
            f"{bundle.path}: input shape {shape} is not (1, H, W, 1) and the model has no "
            "preprocess spec"
        )
    scale, zp = input_details["quantization"]
    if not scale:
        raise TinysmileError(f"{bundle.path}: input is not quantized and has no preprocess spec")
    # Pixels 0..255 spread over the int8 input's whole float range.
    lo, hi = (-128 - zp) * scale, (127 - zp) * scale
    std = 255.0 / (hi - lo)
    return PreprocessSpec(height=shape[1], width=shape[2], pixel_mean=-lo * std, pixel_std=std)


class Runner:
    """One loaded int8 model: pixels (uint8 H x W x 1) in, int8 output and probability out."""

    def __init__(self, model: str | Path | Bundle | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.bundle = model if isinstance(model, Bundle) else load_bundle(model)
        try:
            self.interpreter = Interpreter(
                model_content=self.bundle.model_bytes(),
                experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
            )
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise TinysmileError(f"{self.bundle.model_path}: LiteRT cannot load it ({exc})")
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        if self.input["dtype"] != np.int8 or self.output["dtype"] != np.int8:
            raise TinysmileError(
                f"{self.bundle.model_path}: expected int8 input and output, got "
                f"{np.dtype(self.input['dtype']).name} and {np.dtype(self.output['dtype']).name}"
            )
        self.spec = spec_for(self.bundle, self.input)
        expected = (1, self.spec.height, self.spec.width, 1)
        if tuple(int(d) for d in self.input["shape"]) != expected:
            raise TinysmileError(
                f"{self.bundle.path}: model input {list(self.input['shape'])} does not match "
                f"the preprocess spec {list(expected)}"
            )
        self.in_scale, self.in_zero_point = self.input["quantization"]
        self.out_scale, self.out_zero_point = self.output["quantization"]

    @property
    def labels(self) -> list[str]:
        return self.bundle.labels or ["no_smile", "smile"]

    @property
    def classes(self) -> int:
        """Outputs of the model: 1 (a smile's probability) or one per label (a softmax)."""
        return int(np.prod(self.output["shape"]))

    @property
    def multiclass(self) -> bool:
        return self.classes > 1

    def decide(self, q: np.ndarray) -> dict[str, Any]:
        """One flat int8 output's decision: the label, the probabilities and the int8 values.
        A softmax's label is its largest output's (the first of equals, as the C's scan)."""
        q = np.asarray(q).reshape(-1)
        if q.size == 1:
            value = int(q[0])
            positive = value >= self.threshold_int8
            return {
                "label": self.labels[1 if positive else 0],
                "smile": bool(positive),
                "probability": float(self.dequantize(value)),
                "output_int8": value,
                "threshold_int8": self.threshold_int8,
            }
        if q.size != len(self.labels):
            raise TinysmileError(
                f"{self.bundle.path}: {q.size} outputs but {len(self.labels)} labels"
            )
        k = int(np.argmax(q))
        probabilities = self.dequantize(q)
        return {
            "label": self.labels[k],
            "class": k,
            "probability": float(probabilities[k]),
            "probabilities": {n: float(p) for n, p in zip(self.labels, probabilities, strict=True)},
            "outputs_int8": [int(v) for v in q],
        }

    @property
    def threshold_int8(self) -> int:
        """Decision: positive when the int8 output >= this."""
        meta = self.bundle.meta
        if "threshold_int8" in meta:
            return int(meta["threshold_int8"])
        p = 0.5 if self.bundle.threshold is None else float(self.bundle.threshold)
        return self.int8_threshold_for(p)

    def int8_threshold_for(self, probability: float) -> int:
        """The smallest int8 output whose dequantized value reaches `probability`."""
        q = np.arange(-128, 128)
        ok = np.flatnonzero(self.dequantize(q) >= probability)
        return int(q[ok[0]]) if ok.size else 128  # 128: never positive

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (np.asarray(q, dtype=np.float64) - self.out_zero_point) * self.out_scale

    def quantize_input(self, pixels: np.ndarray) -> np.ndarray:
        return to_int8(self.spec, pixels, self.in_scale, self.in_zero_point)

    def run_int8(self, x: np.ndarray) -> np.ndarray:
        """One int8 input tensor (H, W, 1) -> the flat int8 output."""
        self.interpreter.set_tensor(self.input["index"], x.reshape(self.input["shape"]))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"]).reshape(-1).copy()

    def outputs(self, pixels: np.ndarray, progress: bool = False) -> np.ndarray:
        """uint8 (N, H, W, 1) -> int8 (N, K) outputs."""
        from rich.console import Console
        from rich.progress import track

        items = track(
            pixels,
            description="int8 inference",
            console=Console(stderr=True),
            transient=True,
            disable=not progress,
        )
        return np.stack([self.run_int8(self.quantize_input(p)) for p in items])

    def scores(self, pixels: np.ndarray, progress: bool = False) -> np.ndarray:
        """Smile score per image as the int8 output (column 0 of a 1-unit sigmoid)."""
        out = self.outputs(pixels, progress)
        if out.shape[1] != 1:
            raise TinysmileError(
                f"{self.bundle.path}: binary metrics need a 1-output model, got {out.shape[1]}"
            )
        return out[:, 0].astype(np.int64)

    def predict_file(self, path: str | Path, detector: Any = None) -> dict[str, Any]:
        """One image file's decision. detector (tinysmile.pi.detect): find the face in the
        whole image with it and frame it by the spec's rule, in place of the spec's own
        face_crop; no face found: the centre square."""
        pre = whole_image_crop(self.spec, load_image(path), detector)
        q = self.run_int8(self.quantize_input(pre.pixels))
        result: dict[str, Any] = {"image": str(path), **self.decide(q)}
        if self.spec.face_crop != "none" or detector is not None:
            result["face_found"] = bool(pre.face_found)
        if detector is not None:
            result["crop"] = list(pre.crop) if pre.face_found else None
        return result


def run_tflite(model: bytes, inputs: np.ndarray) -> np.ndarray:
    """Already-quantized int8 inputs (N, ...) through a model's bytes -> int8 outputs (N, K)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    results = []
    for x in inputs:
        it.set_tensor(inp["index"], x.reshape(inp["shape"]))
        it.invoke()
        results.append(it.get_tensor(out["index"]).reshape(-1).copy())
    return np.stack(results)


def op_names(model: bytes) -> list[str]:
    """Builtin op names of a .tflite's operators, in execution order."""
    from ai_edge_litert import schema_py_generated as schema

    names = {
        getattr(schema.BuiltinOperator, n): n
        for n in dir(schema.BuiltinOperator)
        if not n.startswith("_") and isinstance(getattr(schema.BuiltinOperator, n), int)
    }
    m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    out = []
    for op in m.subgraphs[0].operators or []:
        code = m.operatorCodes[op.opcodeIndex]
        # builtinCode is authoritative; deprecatedBuiltinCode only matters for old files.
        value = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))
        out.append(names.get(value, f"BUILTIN_{value}"))
    return out
