"""Augmentation: seeded, shape-keeping, each transform does something, preview sheet."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from tinysmile.data.augment import SERVING_SKEW, TRANSFORMS, apply, augment
from tinysmile.data.preview import CAPTION, GAP, preview_sheet
from tinysmile.errors import TinysmileError


def face_like(size: int = 48) -> np.ndarray:
    """A smooth image with structure (a flat one hides shifts and rotations)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    image = 128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + (xx - size / 2)
    return np.clip(image, 0, 255).astype(np.uint8)


def test_same_seed_same_result_and_shape_kept():
    image = face_like()[:, :, None]
    a = augment(image, np.random.default_rng(7), p=1.0)
    b = augment(image, np.random.default_rng(7), p=1.0)
    c = augment(image, np.random.default_rng(8), p=1.0)
    assert a.shape == (48, 48, 1) and a.dtype == np.uint8
    assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert augment(image[:, :, 0], np.random.default_rng(7), p=1.0).shape == (48, 48)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_each_transform_changes_the_image_and_strength_zero_does_not(name):
    image = face_like()
    rng = np.random.default_rng(3)
    changed = [not np.array_equal(apply(name, image, rng, 1.0), image) for _ in range(4)]
    # blur may draw a sigma too small to matter once in a while; never four times running
    assert any(changed)
    assert_array_equal(apply(name, image, np.random.default_rng(3), 0.0), image)


def test_serving_skew_transforms_do_what_they_say():
    image = face_like()
    rng = np.random.default_rng(11)
    ldr = apply("low_dynamic_range", image, rng)
    assert int(ldr.max()) - int(ldr.min()) < int(image.max()) - int(image.min())
    ramp = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    crushed = apply("crushed_shadows", ramp, rng)
    assert (crushed == 0).sum() >= 4 * 15  # the knee is at least 15 grey levels up
    assert crushed[0, 255] == 255
    lit = apply("backlit", np.full((48, 48), 100, np.uint8), rng)
    assert lit[0, 0] > 100 > lit[24, 24]  # corners glow, the face darkens
    assert set(SERVING_SKEW) <= set(TRANSFORMS)


def test_augment_rejects_bad_input():
    with pytest.raises(TinysmileError, match="unknown augmentation"):
        augment(face_like(), np.random.default_rng(0), transforms=["sepia"])
    with pytest.raises(TinysmileError, match="uint8"):
        augment(face_like().astype(np.float32), np.random.default_rng(0))


def test_preview_from_folder(tmp_path):
    folder = tmp_path / "imgs"
    for cls in ("smile", "no_smile"):
        (folder / cls).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(folder / cls / f"{i}.png"), np.roll(face_like(), 5 * i, axis=1))
    (folder / "smile" / "broken.png").write_bytes(b"nope")
    out = tmp_path / "sheet.png"
    info = preview_sheet(out, folder=folder, count=10, augment_variants=3, tile=32)
    assert info == {"rows": 6, "columns": 4, "images": 6}
    sheet = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert sheet.shape == (6 * (32 + CAPTION + GAP) + GAP, 4 * (32 + GAP) + GAP)
    info = preview_sheet(out, folder=folder, count=10, tile=16)
    assert info == {"rows": 1, "columns": 6, "images": 6}
