"""Settings for the whole test session."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

STATE_ENV = "TINYSMILE_STATE_DIR"
_STATE_FOLDER = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    # The emulators the tests start (`tinysmile flash`, profile, verify) are recorded in a
    # state folder of the session's own, not in the user's ~/.cache/tinysmile: running the
    # tests neither talks to nor stops an emulator the user started. pytest-xdist's workers
    # inherit the controller's environment, this variable with it: each takes a subfolder
    # of its own, or two workers would flash, stop and talk to the same emulator.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if STATE_ENV not in os.environ:
        folder = tempfile.mkdtemp(prefix="tinysmile-test-state-")
        os.environ[STATE_ENV] = folder
        config.stash[_STATE_FOLDER] = folder
    if worker:
        own = os.path.join(os.environ[STATE_ENV], worker)
        os.makedirs(own, exist_ok=True)
        os.environ[STATE_ENV] = own


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_STATE_FOLDER, None)
    if folder is not None:
        os.environ.pop(STATE_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    # `-n auto`: one worker per core the session may use, at most 4. Each worker can hold
    # TensorFlow and a PlatformIO build at once; more than 4 gains little, as the longest
    # file (the search's) sets the floor, and costs memory.
    return max(1, min(4, len(os.sched_getaffinity(0))))
