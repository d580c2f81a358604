"""Cameras: where frames come from.

`--camera` names one: `picamera2` (the Pi's camera module, from Raspberry Pi OS's apt
package), `opencv:N` (any OpenCV capture device), `folder:DIR` (image files in name order)
or `video:FILE`. A folder or video ends when its frames are exhausted; live cameras never
end. Every frame is uint8 grey or BGR, as the preprocessing takes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinysmile.errors import TinysmileError

KINDS = ("picamera2", "opencv:N", "folder:DIR", "video:FILE")


@dataclass
class Frame:
    source: str  # file name, or "frame N" for a stream
    image: np.ndarray  # uint8 (H, W) grey or (H, W, 3) BGR


class Camera:
    """A source of frames; `read()` gives None when there are no more."""

    live = False  # a live camera never runs out; a folder/video does

    def read(self) -> Frame | None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame


class FolderCamera(Camera):
    """Image files of a folder (not recursive, hidden files left out), in name order."""

    def __init__(self, folder: Path) -> None:
        from tinysmile.data.importers import IMAGE_SUFFIXES

        if not folder.is_dir():
            raise TinysmileError(f"camera folder:{folder}: no such folder")
        self.files = sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not self.files:
            raise TinysmileError(f"camera folder:{folder}: no image files in it")
        self._next = 0

    def read(self) -> Frame | None:
        from tinysmile.data.preprocess import load_image

        if self._next >= len(self.files):
            return None
        path = self.files[self._next]
        self._next += 1
        # An unreadable frame stops the run with one line: a replay that silently drops
        # frames would not be a replay.
        return Frame(str(path), load_image(path))


class OpenCVCamera(Camera):
    """cv2.VideoCapture on a device index or a video file."""

    def __init__(self, target: int | str, what: str, live: bool) -> None:
        import cv2

        self.what = what
        self.live = live
        # OpenCV prints a warning per backend it tries; the one-line error below says it.
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            self.cap = cv2.VideoCapture(target)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not self.cap.isOpened():
            self.cap.release()
            raise TinysmileError(f"camera {what}: cannot be opened")
        self.count = 0

    def read(self) -> Frame | None:
        ok, image = self.cap.read()
        if not ok or image is None:
            if self.live:
                raise TinysmileError(f"camera {self.what}: stopped giving frames")
            return None
        self.count += 1
        return Frame(f"frame {self.count}", image)

    def close(self) -> None:
        self.cap.release()


class Picamera2Camera(Camera):
    """The Pi camera module through picamera2 (apt's python3-picamera2)."""

    live = True

    def __init__(self, size: tuple[int, int] = (640, 480)) -> None:
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError:
            raise TinysmileError(
                "camera picamera2: picamera2 is not importable; on Raspberry Pi OS install "
                "python3-picamera2 with apt and make the venv with --system-site-packages"
            ) from None
        try:
            self.cam: Any = Picamera2()
            # YUV420's first plane is the luma: grey without a colour conversion.
            self.cam.configure(
                self.cam.create_still_configuration(main={"size": size, "format": "YUV420"})
            )
            self.cam.start()
        except (RuntimeError, IndexError, OSError) as exc:
            raise TinysmileError(f"camera picamera2: cannot be started ({exc})") from None
        self.size = size
        self.count = 0

    def read(self) -> Frame | None:
        w, h = self.size
        yuv = self.cam.capture_array("main")
        self.count += 1
        return Frame(f"frame {self.count}", np.ascontiguousarray(yuv[:h, :w]))

    def close(self) -> None:
        self.cam.stop()
        self.cam.close()


def open_camera(spec: str) -> Camera:
    """A camera from its `--camera` name."""
    kind, _, arg = spec.partition(":")
    if kind == "picamera2" and not arg:
        return Picamera2Camera()
    if kind == "opencv":
        if not arg.isdigit():
            raise TinysmileError(f"camera {spec}: opencv needs a device number, e.g. opencv:0")
        return OpenCVCamera(int(arg), spec, live=True)
    if kind == "folder" and arg:
        return FolderCamera(Path(arg))
    if kind == "video" and arg:
        if not Path(arg).is_file():
            raise TinysmileError(f"camera {spec}: no such video file")
        return OpenCVCamera(arg, spec, live=False)
    raise TinysmileError(f"camera {spec!r}: use one of {', '.join(KINDS)}")
