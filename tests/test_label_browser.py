"""The rating page in a real browser: Debian's headless Chromium driven by Selenium
(both installed by scripts/setup.sh, the README's set-up)."""

from __future__ import annotations

import shutil

import pytest
from label_helpers import Server, make_store, votes_in_store
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tinysmile.data.store import Store


@pytest.fixture(scope="module")
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("chromium and chromium-driver are missing: run scripts/setup.sh")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(arg)
    # An explicit driver path: Selenium Manager would otherwise try to download one.
    b = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=driver))
    b.set_page_load_timeout(30)
    yield b
    b.quit()


class Page:
    def __init__(self, browser, url: str) -> None:
        self.b = browser
        self.b.get(url)
        self.wait = WebDriverWait(self.b, 20)

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


def test_keys_land_as_votes_and_undo_removes_the_last(browser, tmp_path):
    make_store(tmp_path / "s", unlabelled=5)
    with Server(tmp_path / "s", "--raters-per-image", "1") as srv:
        page = Page(browser, srv.url)
        page.login("ann")
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
