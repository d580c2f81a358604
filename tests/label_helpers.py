"""Small stores and a real `tinysmile label serve` process for the label tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from tinysmile.data.store import Store

try:  # the browser half; selenium is a dev dependency (scripts/setup.sh installs it)
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # bench/bench_label.py needs none of it
    webdriver = None  # type: ignore[assignment]


def synthetic_image(rng: np.random.Generator, smile: int, size: int = 64) -> bytes:
    """A noisy grey image whose brightness says its class: a net learns it in an epoch,
    so tests of the machinery around training do not wait on a real dataset."""
    mean = 170.0 if smile else 80.0
    pixels = np.clip(rng.normal(mean, 30.0, (size, size)), 0, 255).astype(np.uint8)
    ok, png = cv2.imencode(".png", pixels)
    assert ok
    return png.tobytes()


def make_store(
    root: Path,
    *,
    unlabelled: int = 0,
    labelled: int = 0,
    flip_rate: float = 0.0,
    seed: int = 0,
) -> dict[str, dict]:
    """A store with synthetic images; returns {id: {"true": label, "given": label|None}}.

    Labelled images get their true label, except a `flip_rate` share (exactly
    round(flip_rate * labelled), chosen at random) whose label is flipped.
    """
    rng = np.random.default_rng(seed)
    flipped = set(
        rng.choice(labelled, size=round(flip_rate * labelled), replace=False).tolist()
        if labelled
        else []
    )
    truth: dict[str, dict] = {}
    with Store(root) as store, store.transaction():
        for i in range(unlabelled + labelled):
            true = int(rng.integers(0, 2))
            j = i - unlabelled
            given = None if j < 0 else (1 - true if j in flipped else true)
            r = store.add_image(
                synthetic_image(rng, true),
                suffix=".png",
                label=given,
                task="smile",
                source="synthetic" if given is not None else "unlabelled",
                original=f"synthetic/{i}.png",
            )
            truth[r.id] = {"true": true, "given": given}
    return truth


class Server:
    """`tinysmile label serve` in a child process, on a free port of 127.0.0.1."""

    def __init__(self, store: Path, *args: str, port: int = 0) -> None:
        self.store, self.args, self.port = store, args, port
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> Server:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tinysmile",
                "label",
                "serve",
                "--store",
                str(self.store),
                "--port",
                str(self.port),
                *self.args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 60
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"label serve exited: {self.proc.wait()}")
            if line.startswith("label serve: "):
                self.url = line.split()[2]
                break
        else:
            raise AssertionError("label serve did not start")
        # uvicorn accepts once its loop runs: wait for the first answer.
        while time.monotonic() < deadline:
            try:
                self.get("api/next?rater=probe")
                return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        raise AssertionError("label serve does not answer")

    def base(self) -> str:
        return self.url.split("?")[0]

    def get(self, path: str, headers: dict | None = None) -> tuple[int, dict | bytes]:
        return request(self.base() + path, headers=headers)

    def post(self, path: str, body: object, raw: bytes | None = None) -> tuple[int, dict]:
        data = raw if raw is not None else json.dumps(body).encode()
        return request(self.base() + path, data=data)  # type: ignore[return-value]

    def vote(self, rater: str, image: str, answer: str, req: str | None = None) -> tuple:
        body = {
            "request": req or uuid.uuid4().hex,
            "rater": rater,
            "image": image,
            "answer": answer,
        }
        return self.post("api/vote", body)

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> Server:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def request(
    url: str, data: bytes | None = None, headers: dict | None = None, timeout: float = 30
) -> tuple[int, dict | bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            status, body, kind = res.status, res.read(), res.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        status, body, kind = err.code, err.read(), err.headers.get("Content-Type", "")
    return status, json.loads(body) if "json" in kind else body


def votes_in_store(store: Path) -> list[tuple]:
    with Store(store, create=False) as s:
        return s.query("SELECT request, rater, sample, answer, undone FROM votes ORDER BY vote")


@contextmanager
def chrome():
    """Debian's headless Chromium through its chromedriver (scripts/setup.sh installs both),
    quit on leaving. Its TMPDIR is a folder of its own, removed after it: Chromium leaves a
    folder (org.chromium.Chromium.*) in the temporary folder at every start. The folder is
    made short on purpose, not under the test's tmp_path: the socket Chromium puts in it
    must have a path under 108 bytes."""
    import pytest

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if webdriver is None or not (chromium and driver):
        pytest.fail("selenium, chromium and chromium-driver are missing: run scripts/setup.sh")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        # No calls home: offline, each is a refused connection (and a wait) per start.
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        opts.add_argument(arg)
    tmp = tempfile.mkdtemp(prefix="tsm-chromium-")
    try:
        service = webdriver.ChromeService(
            # An explicit driver path: Selenium Manager would otherwise try to download one.
            executable_path=driver,
            env={**os.environ, "TMPDIR": tmp},
        )
        b = webdriver.Chrome(options=opts, service=service)
        try:
            b.set_page_load_timeout(30)
            yield b
        finally:
            b.quit()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Page:
    def __init__(self, browser, url: str) -> None:
        self.b = browser
        self.b.get(url)
        # Poll often: the default half second would dominate a test of many key presses.
        self.wait = WebDriverWait(self.b, 20, poll_frequency=0.01)

    def login(self, name: str) -> None:
        field = self.wait.until(lambda b: b.find_element(By.ID, "rater"))
        if not field.is_displayed():  # a rater is remembered: switch
            self.b.find_element(By.ID, "switch").click()
            field = self.wait.until(
                lambda b: (
                    b.find_element(By.ID, "rater")
                    if b.find_element(By.ID, "rater").is_displayed()
                    else None
                )
            )
        field.send_keys(name, Keys.ENTER)
        self.settle()

    def settle(self) -> None:
        self.wait.until(lambda b: b.execute_script("return document.body.dataset.ready") == "1")

    @property
    def image(self) -> str:
        return self.b.execute_script("return document.body.dataset.image")

    def text(self, id_: str) -> str:
        return self.b.find_element(By.ID, id_).text

    def press(self, key: str) -> None:
        """One key, as a rater types it; returns when the page is ready for the next."""
        self.b.find_element(By.TAG_NAME, "body").send_keys(key)
        self.settle()
