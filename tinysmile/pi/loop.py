"""The bot's loop: capture -> find the face -> crop it as the training images were framed
-> the bundle's preprocessing -> inference -> the smile LED (and, optionally, the log).

No face in the frame means no inference: the LED goes off and the record says face null.
An attitude bundle (a softmax over negative, neutral, positive) is decided by its largest
output: the record names the attitude with the three probabilities, the LED lights for
positive, and the status line keeps a rolling history of the last attitudes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinysmile.bundle import Bundle, load_bundle
from tinysmile.data.preprocess import Preprocessed, to_gray
from tinysmile.errors import TinysmileError
from tinysmile.pi.camera import Camera, Frame
from tinysmile.pi.capturelog import CaptureLog
from tinysmile.pi.detect import DEFAULT_DETECTOR, Detector, make_detector
from tinysmile.pi.engine import Engine, make_engine
from tinysmile.pi.gpio import Pins
from tinysmile.train.infer import Runner

STAGES = ("capture", "detect", "preprocess", "infer")
# How many of the last attitudes the status line shows, and the label that lights the LED.
HISTORY = 12
LIT_LABEL = "positive"
NO_FACE = "-"


def load_pi_bundle(model: str | None) -> Bundle:
    """A bundle with a preprocessing spec: the Pi needs its framing rule, so a bare .tflite
    (whose spec would be guessed from its input shape) is refused."""
    bundle = load_bundle(model)
    if not bundle.preprocess:
        raise TinysmileError(
            f"{bundle.path}: no preprocessing spec (bundle.json); the Pi runtime needs the "
            "bundle's framing rule: make one with `tinysmile quantize`"
        )
    return bundle


@dataclass
class Stats:
    frames: int = 0
    faces: int = 0
    smiles: int = 0
    started: float = field(default_factory=time.perf_counter)
    last_ms: dict[str, float] = field(default_factory=dict)
    by_engine: dict[str, int] = field(default_factory=dict)
    offload: dict[str, Any] = field(default_factory=dict)  # mcu: failovers, reconnects
    last: dict[str, Any] = field(default_factory=dict)
    # An attitude bundle's: decisions per label, and the last HISTORY ones (NO_FACE: none).
    labels: dict[str, int] | None = None
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY))

    def history_line(self) -> str:
        """The last decisions, oldest first, by their first three letters (- for no face)."""
        return " ".join(h if h == NO_FACE else h[:3] for h in self.history)

    def fps(self) -> float:
        dt = time.perf_counter() - self.started
        return self.frames / dt if dt > 0 else 0.0

    def line(self) -> str:
        last = self.last
        if not last:
            decision = "-"
        elif last["face"] is None:
            decision = "no face"
        elif "attitude" in last:
            ps = " ".join(f"{k[:3]} {v:.2f}" for k, v in last["probabilities"].items())
            decision = f"{last['attitude']} ({ps})"
        else:
            decision = f"{'smile' if last['smile'] else 'no smile'} p={last['probability']:.2f}"
        ms = " ".join(f"{k} {self.last_ms.get(k, 0):.1f}" for k in STAGES)
        line = (
            f"{self.frames} frames {self.fps():.1f} fps | {decision} | ms: {ms} | "
            f"engine {last.get('engine') or '-'}"
        )
        if self.offload:
            state = "up" if self.offload["connected"] else "down, deciding here"
            line += f" | mcu {state} ({self.offload['failovers']} failovers)"
        if self.labels is not None:
            line += f" | history: {self.history_line()}"
        return line

    def summary(self) -> dict[str, Any]:
        return {
            "offload": dict(self.offload),
            "frames": self.frames,
            "faces": self.faces,
            "smiles": self.smiles,
            "fps": round(self.fps(), 2),
            "by_engine": dict(self.by_engine),
            **({} if self.labels is None else {"attitudes": dict(self.labels)}),
        }


class Bot:
    """One model, one detector, one engine, pins and an optional log."""

    def __init__(
        self,
        bundle: Bundle,
        detector: str | Detector = DEFAULT_DETECTOR,
        engine: str | Engine = "litert",
        pins: Pins | None = None,
        log: CaptureLog | None = None,
        offload: Any = None,
        explain: bool = False,
    ) -> None:
        from tinysmile.device.app import smile_index

        self.bundle = bundle
        self.runner = Runner(bundle)
        self.spec = self.runner.spec
        self.detector = (
            make_detector(detector, self.spec) if isinstance(detector, str) else detector
        )
        self.engine = make_engine(engine, self.runner) if isinstance(engine, str) else engine
        self.pins = pins or Pins(None, None)
        self.log = log
        self.offload = offload
        self.explain = explain  # log the occlusion map of each logged crop (map.png)
        self.model_hash = bundle.model_hash()
        self.stats = Stats()
        # A softmax bundle (attitude) is decided by its largest output, not a threshold.
        self.classes = self.runner.multiclass
        if self.classes:
            if LIT_LABEL not in self.runner.labels:
                raise TinysmileError(
                    f"{bundle.name}: labels {self.runner.labels} have no {LIT_LABEL!r} to light"
                    " the LED for"
                )
            if offload is not None:
                raise TinysmileError(
                    "--mcu: the board's app decides smiles; an attitude bundle runs on the Pi"
                )
            self.threshold = None
            self.stats.labels = {name: 0 for name in self.runner.labels}
        else:
            self.smile_index = smile_index(bundle, int(np.prod(self.runner.output["shape"])))
            self.threshold = self.runner.threshold_int8

    def _decided(
        self,
        record: dict[str, Any],
        box: tuple[int, int, int, int],
        pre: Preprocessed,
        out: np.ndarray,
        engine: str,
    ) -> None:
        if self.classes:
            d = self.runner.decide(out)
            record.update(
                face=list(box),
                crop=list(pre.crop),
                attitude=d["label"],
                probability=d["probability"],
                probabilities=d["probabilities"],
                outputs_int8=d["outputs_int8"],
                smile=d["label"] == LIT_LABEL,  # what lights the LED
                engine=engine,
            )
            return
        q = int(out[self.smile_index])
        record.update(
            face=list(box),
            crop=list(pre.crop),
            probability=float(self.runner.dequantize(q)),
            smile=bool(q >= self.threshold),
            output_int8=q,
            engine=engine,
        )

    def step(self, frame: Frame, capture_ms: float = 0.0) -> dict[str, Any]:
        """Decide on one frame; drive the LED; log; return the frame's record."""
        ms = {"capture": capture_ms}
        t0 = time.perf_counter()
        gray = to_gray(frame.image)
        record: dict[str, Any] = {"source": frame.source, "face": None}
        pre = None
        board = None
        if self.offload is not None and self.offload.ready() and self.offload.whole_frames:
            # The board finds the face itself: the whole frame goes there, and the Pi's
            # detector runs only when the board does not answer.
            board = self.offload.decide(gray)
        if board is not None:
            ms["detect"] = ms["preprocess"] = 0.0
            ms["infer"] = (time.perf_counter() - t0) * 1e3
            if board.output is not None:
                assert board.face is not None and board.square is not None
                pre = Preprocessed(pixels=board.pixels, crop=board.square, face_found=True)
                self._decided(record, board.face, pre, board.output, self.offload.name)
            else:
                record.update(probability=None, smile=False, output_int8=None)
                record["engine"] = self.offload.name
        else:
            boxes = self.detector.detect(gray)
            t1 = time.perf_counter()
            ms["detect"] = (t1 - t0) * 1e3
            if boxes:
                box = tuple(int(v) for v in boxes[0])
                pre = self.detector.crop(self.spec, gray, box)  # type: ignore[arg-type]
                x = self.runner.quantize_input(pre.pixels)
                t2 = time.perf_counter()
                ms["preprocess"] = (t2 - t1) * 1e3
                out, engine = None, self.engine.name
                if self.offload is not None:
                    out = self.offload.infer(x, pre.pixels)
                    if out is not None:
                        engine = self.offload.name
                if out is None:
                    out = self.engine.run(x)
                ms["infer"] = (time.perf_counter() - t2) * 1e3
                self._decided(record, box, pre, out, engine)  # type: ignore[arg-type]
            else:
                ms["preprocess"] = ms["infer"] = 0.0
                record.update(probability=None, smile=False, engine=None)
                record["outputs_int8" if self.classes else "output_int8"] = None
                if self.classes:
                    record["attitude"] = None
        self.pins.show(record["smile"])
        record["led"] = int(record["smile"]) if self.pins.led is not None else None
        record["ms"] = {k: round(v, 3) for k, v in ms.items()}
        if self.log is not None and pre is not None:
            t3 = time.perf_counter()
            meta = {k: record[k] for k in ("source", "face", "crop", "probability", "smile")}
            if self.classes:
                meta.update({k: record[k] for k in ("attitude", "probabilities", "outputs_int8")})
            else:
                meta["output_int8"] = record["output_int8"]
            meta.update(
                threshold_int8=self.threshold,
                engine=record["engine"],
                detector=self.detector.name if board is None else "board",
                model=self.bundle.name,
                model_sha256=self.model_hash,
                frame_shape=list(frame.image.shape[:2]),
            )
            extra = None
            if self.explain:
                import cv2

                from tinysmile.train.explain import heat_image, occlusion_map

                m = occlusion_map(self.runner, pre.pixels)
                # One frame has no run to share a scale with: the map's own strongest value.
                ok, png = cv2.imencode(
                    ".png", heat_image(pre.pixels[:, :, 0], m, float(np.abs(m).max()))
                )
                extra = {"map.png": png.tobytes()} if ok else None
            kept = self.log.add(pre.pixels[:, :, 0], frame.image, meta, extra)
            record["logged"] = str(kept) if kept is not None else None
            record["ms"]["log"] = round((time.perf_counter() - t3) * 1e3, 3)
        st = self.stats
        st.frames += 1
        st.faces += int(record["face"] is not None)
        st.smiles += int(record["smile"])
        if self.classes:
            label = record.get("attitude")
            if label is not None:
                st.labels[label] += 1  # type: ignore[index]
            st.history.append(label or NO_FACE)
            record["history"] = list(st.history)
        if record["engine"]:
            st.by_engine[record["engine"]] = st.by_engine.get(record["engine"], 0) + 1
        st.last_ms = ms
        st.last = record
        if self.offload is not None:
            st.offload = {
                "connected": self.offload.connected,
                "port": self.offload.port,
                "failovers": self.offload.failovers,
                "reconnects": self.offload.reconnects,
            }
        return record

    def run(
        self,
        camera: Camera,
        trigger: str = "continuous",
        emit: Callable[[dict[str, Any]], None] | None = None,
        stop: threading.Event | None = None,
        max_frames: int | None = None,
    ) -> Stats:
        """Frames until the camera runs out, `stop` is set or `max_frames` were decided.

        With trigger "button" one frame is taken per nose press."""
        stop = stop or threading.Event()
        if trigger == "button" and self.pins.button is None:
            raise TinysmileError("--trigger button needs the button pin (not --no-gpio)")
        while not stop.is_set():
            if max_frames is not None and self.stats.frames >= max_frames:
                break
            if trigger == "button" and not self.pins.wait_press(timeout=0.1):
                continue
            t0 = time.perf_counter()
            frame = camera.read()
            if frame is None:
                break
            record = self.step(frame, (time.perf_counter() - t0) * 1e3)
            if emit is not None:
                emit(record)
        return self.stats

    def close(self) -> None:
        self.pins.show(False)
        if self.offload is not None:
            self.offload.close()
        self.pins.close()
