"""The loop, end to end on small data: the Pi's folder camera logs captures -> `data import
captures` -> two raters vote through the page in a real browser -> train on the resolved
labels -> quantize -> verify on the emulated board.

The camera's frames are SMILEsmileD crops (so `--detector none`); the raters answer with
each frame's SMILEsmileD label. Training is tiny (100 images, 2 epochs): the test is about
the loop, not the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from label_helpers import Page, Server, chrome

from tinysmile.cli import main
from tinysmile.data.store import Store

REPO = Path(__file__).resolve().parent.parent
SMILESMILED = Path(
    os.environ.get("TINYSMILE_SMILESMILED", REPO.parent / "shared" / "datasets" / "smilesmiled")
)
PER_CLASS = 50

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (SMILESMILED / "SMILEs").is_dir(), reason=f"SMILEsmileD not found at {SMILESMILED}"
    ),
    pytest.mark.skipif(
        not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")),
        reason="needs qemu-system-arm and arm-none-eabi-gcc (scripts/setup.sh installs them)",
    ),
]


def _frames(folder: Path) -> None:
    """A flat folder of face crops, as a camera would see them; the label is in the name."""
    folder.mkdir()
    for label, sub in ((1, "positives/positives7"), (0, "negatives/negatives7")):
        files = sorted((SMILESMILED / "SMILEs" / sub).glob("*.jpg"))[:PER_CLASS]
        for i, f in enumerate(files):
            (folder / f"capture-{label}-{i:03d}.jpg").write_bytes(f.read_bytes())


def _logged_truth(log: Path) -> dict[str, int]:
    """{content hash of each logged crop: the label of the frame it came from}."""
    from tinysmile.pi.capturelog import CROP_FILE, entry_folders, read_entry

    truth = {}
    for entry in entry_folders(log):
        label = int(Path(read_entry(entry)["source"]).name.split("-")[1])
        truth[hashlib.sha256((entry / CROP_FILE).read_bytes()).hexdigest()] = label
    return truth


def test_captures_to_labels_to_a_verified_device(tmp_path, capsys):
    _frames(tmp_path / "frames")
    log = tmp_path / "log"
    run = ["pi", "run", "--camera", f"folder:{tmp_path / 'frames'}", "--detector", "none"]
    assert main([*run, "--no-gpio", "--log", str(log), "--json"]) == 0
    truth = _logged_truth(log)
    assert len(truth) == 2 * PER_CLASS
    store = tmp_path / "store"
    assert main(["data", "import", "captures", str(log), "--store", str(store)]) == 0
    with Store(store, create=False) as s:
        assert s.samples() == []  # nothing to train on before the raters

    with chrome() as browser, Server(store, "--policy", "two") as srv:
        page = Page(browser, srv.url)
        for rater in ("ann", "bob"):
            page.login(rater)
            while page.image:
                page.press("y" if truth[page.image] else "n")
    with Store(store, create=False) as s:
        labels = {x.id: x.label for x in s.samples()}
    assert labels == {k: v for k, v in truth.items() if k in labels}
    assert len(labels) == len(truth)
    capsys.readouterr()
    assert main(["label", "stats", "--store", str(store), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["raters"]["ann"]["votes"] == stats["raters"]["bob"]["votes"] == len(truth)
    assert stats["agreement"]["fleiss_kappa"] == 1.0
    assert stats["sources"]["captures"]["resolved"] == len(truth)

    run, bundle = tmp_path / "run", tmp_path / "bundle"
    assert (
        main(
            [
                "train",
                "--arch",
                "embedded3",
                "--data",
                str(store),
                "--out",
                str(run),
                "--epochs",
                "2",
                "--batch-size",
                "32",
            ]
        )
        == 0
    )
    assert json.loads((run / "run.json").read_text())["train_samples"] > 60
    assert main(["quantize", str(run), "--out", str(bundle), "--calibration", "50"]) == 0
    capsys.readouterr()
    try:
        assert main(["flash", str(bundle), "--json"]) == 0
        capsys.readouterr()
        assert main(["verify", str(bundle), "--samples", "4", "--json"]) == 0
        verified = json.loads(capsys.readouterr().out)
        assert verified["ok"] is True and verified["matched"] == 4
    finally:
        main(["stop"])
