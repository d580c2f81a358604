"""The rating page in a real browser: Debian's headless Chromium driven by Selenium
(both installed by scripts/setup.sh, the README's set-up)."""

from __future__ import annotations

from pathlib import Path

import pytest
from label_helpers import Page, Server, chrome, make_store, votes_in_store
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tinysmile.data.store import Store


@pytest.fixture(scope="module")
def browser():
    with chrome() as b:
        yield b


def test_keys_land_as_votes_and_undo_removes_the_last(browser, tmp_path):
    make_store(tmp_path / "s", unlabelled=5)
    with Server(tmp_path / "s", "--raters-per-image", "1") as srv:
        page = Page(browser, srv.url)
        page.login("ann")
        # What the rater sees: the image, loaded from the server, and not the name form.
        assert page.b.find_element(By.ID, "image").is_displayed()
        assert page.b.execute_script("return document.getElementById('image').naturalWidth") == 64
        assert not page.b.find_element(By.ID, "login").is_displayed()
        assert page.text("who") == "ann" and page.text("left") == "5"
        shown = []
        for key in ("y", "n", "u", Keys.SPACE):
            shown.append(page.image)
            page.press(key)
        assert len(set(shown)) == 4
        rows = votes_in_store(tmp_path / "s")
        assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
            ("ann", shown[0], "yes", None),
            ("ann", shown[1], "no", None),
            ("ann", shown[2], "unsure", None),
            ("ann", shown[3], "skip", None),
        ]
        assert page.text("rated") == "3"  # a skip is not a vote

        # z undoes the last answer (the skip), then the one before; that image returns.
        page.press("z")
        assert page.image == shown[3]
        page.press("z")
        assert page.image == shown[2]
        rows = votes_in_store(tmp_path / "s")
        assert [r[4] is not None for r in rows] == [False, False, True, True]
        assert page.text("rated") == "2"
        page.press("y")  # answered afresh
        rows = votes_in_store(tmp_path / "s")
        assert (rows[-1][2], rows[-1][3], rows[-1][4]) == (shown[2], "yes", None)
        with Store(tmp_path / "s", create=False) as s:
            labels = {x.id: x.label for x in s.samples()}
        assert labels == {shown[0]: 1, shown[1]: 0, shown[2]: 1}  # unsure + skip: none


def test_two_raters_resolve_images(browser, tmp_path):
    make_store(tmp_path / "s", unlabelled=3)
    with Server(tmp_path / "s", "--raters-per-image", "2", "--policy", "majority") as srv:
        page = Page(browser, srv.url)
        page.login("ann")
        order = []
        while page.image:
            order.append(page.image)
            page.press("y")
        with Store(tmp_path / "s", create=False) as s:
            assert s.samples() == []  # one vote each: pending
        page.login("bob")
        bob = []
        while page.image:
            bob.append(page.image)
            page.press("y" if len(bob) < 3 else "n")
        assert "Nothing left" in page.text("done")
    assert sorted(bob) == sorted(order)
    # The second rater is bob, not "annbob" from a form the browser restored.
    assert sorted({r[1] for r in votes_in_store(tmp_path / "s")}) == ["ann", "bob"]
    with Store(tmp_path / "s", create=False) as s:
        labels = {x.id: x.label for x in s.samples()}
        dropped = [r[0] for r in s.query("SELECT id FROM samples WHERE rating='dropped'")]
    assert labels == {bob[0]: 1, bob[1]: 1}
    assert dropped == [bob[2]]  # 1 yes, 1 no: a tie under majority


def test_a_disagreement_goes_to_a_third_rater(browser, tmp_path):
    make_store(tmp_path / "s", unlabelled=3)
    with Server(tmp_path / "s", "--policy", "two-then-third") as srv:
        page = Page(browser, srv.url)
        page.login("ann")
        ann = []
        while page.image:
            ann.append(page.image)
            page.press("y")
        page.login("bob")
        while page.image:
            page.press("n" if page.image == ann[1] else "y")
        page.login("cy")
        assert page.image == ann[1]  # only the disagreement needs a third rater
        page.press("n")
        assert page.image == ""
    with Store(tmp_path / "s", create=False) as s:
        labels = {x.id: x.label for x in s.samples()}
    assert labels == {ann[0]: 1, ann[1]: 0, ann[2]: 1}


def test_a_vote_survives_a_server_restart_and_a_new_browser(browser, tmp_path):
    """The server dies between two answers: the page retries the answer with the same
    request id until the server is back, and it is stored once. A new browser (the old
    one died) carries on where the rater stopped."""
    make_store(tmp_path / "s", unlabelled=4)
    srv = Server(tmp_path / "s", "--raters-per-image", "1").start()
    port = int(srv.base().rstrip("/").rsplit(":", 1)[1])
    try:
        page = Page(browser, srv.url)
        page.login("ann")
        first = page.image
        page.press("y")
        second = page.image
        srv.kill()
        page.b.find_element(By.TAG_NAME, "body").send_keys("n")  # lands on a dead server
        srv.stop()
        srv = Server(tmp_path / "s", port=port).start()
        page.settle()  # the page's retry got through
        third = page.image
        assert third not in (first, second, ""), (
            page.text("status"),
            votes_in_store(tmp_path / "s"),
        )
    finally:
        srv.stop()
    rows = votes_in_store(tmp_path / "s")
    assert [(r[1], r[2], r[3]) for r in rows] == [("ann", first, "yes"), ("ann", second, "no")]

    with Server(tmp_path / "s", port=port) as srv, chrome() as other:
        page = Page(other, srv.url)
        page.login("ann")
        assert page.image == third  # never an image ann already answered
        assert page.text("rated") == "2"


def test_attitude_keys_on_the_page(browser, tmp_path):
    """label serve --task attitude: the page shows the task's question and buttons, and
    1, 2, 3 answer negative, neutral, positive (y is no answer there)."""
    from test_attitude import _attitude_store

    ids = _attitude_store(tmp_path / "s", 4)
    with Server(tmp_path / "s", "--task", "attitude", "--raters-per-image", "1") as srv:
        page = Page(browser, srv.url)
        page.login("ann")
        assert "negative, neutral or positive" in page.text("question")
        buttons = [b.text for b in page.b.find_elements(By.CSS_SELECTOR, "#keys button")]
        assert buttons == ["1 negative", "2 neutral", "3 positive", "u can't tell", "z undo",
                           "space skip"]  # fmt: skip
        shown = []
        for key in ("3", "1", "2"):
            shown.append(page.image)
            page.press(key)
        page.b.find_element(By.TAG_NAME, "body").send_keys("y")  # not an attitude key
        assert page.image not in shown and page.text("rated") == "3"
    rows = votes_in_store(tmp_path / "s")
    assert [(r[2], r[3]) for r in rows] == list(zip(shown, ("positive", "negative", "neutral")))
    with Store(tmp_path / "s", create=False) as s:
        labels = {x.id: x.label for x in s.samples(task="attitude")}
    assert labels == {shown[0]: 2, shown[1]: 0, shown[2]: 1} and set(labels) <= set(ids)


def test_chromium_keeps_its_temporary_files_to_itself():
    # Each Chromium start leaves an org.chromium.Chromium.* folder in its TMPDIR: chrome()
    # gives it a folder of its own and removes it, so the tests leave none in /tmp.
    with chrome() as b:
        tmp = Path(b.service.env["TMPDIR"])
        b.get("about:blank")
        assert any(p.name.startswith("org.chromium.Chromium.") for p in tmp.iterdir())
    assert not tmp.exists()
