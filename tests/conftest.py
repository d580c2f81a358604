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
    # tests neither talks to nor stops an emulator the user started, and two sessions at
    # once (pytest-xdist workers among them) keep to their own emulators.
    if STATE_ENV not in os.environ:
        folder = tempfile.mkdtemp(prefix="tinysmile-test-state-")
        os.environ[STATE_ENV] = folder
        config.stash[_STATE_FOLDER] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_STATE_FOLDER, None)
    if folder is not None:
        os.environ.pop(STATE_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)
