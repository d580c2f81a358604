"""`tinysmile label serve` over HTTP: validation (4xx, never 5xx), the token, images by
id only, crash safety (SIGKILL mid-session) and 20 concurrent raters on 127.0.0.1."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from label_helpers import Server, make_store, request, votes_in_store

from tinysmile.cli import main


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("label") / "store"
    truth = make_store(root, unlabelled=8, labelled=4)
    return root, truth


def _unlabelled(truth):
    return sorted(i for i, t in truth.items() if t["given"] is None)


def test_bad_requests_get_4xx_and_the_server_stays_up(small_store, tmp_path):
    root, truth = small_store
    img = _unlabelled(truth)[0]
    labelled = next(i for i, t in truth.items() if t["given"] is not None)
    with Server(root) as srv:
        bad_posts = [
            b"",
            b"not json",
            b"[1, 2]",
            b'"a string"',
            b"\xff\xfe",
            b"{}",
            b'{"request": "abcdefgh", "rater": "ann", "image": "%s"}' % img.encode(),
            b'{"request": "abcdefgh", "rater": "ann", "image": "%s", "answer": 1}' % img.encode(),
            b'{"request": "abcdefgh", "rater": ["ann"], "image": "x", "answer": "yes"}',
            b'{"request": "ab", "rater": "ann", "image": "%s", "answer": "yes"}' % img.encode(),
            b'{"request": "abcdefgh", "rater": "ann", "image": "../store.sqlite", "answer": "yes"}',
            b'{"request": "abcdefgh", "rater": "ann", "image": "%s", "answer": "yes"}'
            % labelled.encode(),
            b'{"request": "abcdefgh", "rater": "<script>", "image": "%s", "answer": "yes"}'
            % img.encode(),
            b"{" + b'"a": "' + b"x" * 5000 + b'"}',
        ]
        for body in bad_posts:
            for path in ("api/vote", "api/undo"):
                status, reply = srv.post(path, None, raw=body)
                assert 400 <= status < 500, (path, body[:60], status, reply)
                assert "error" in reply
        for path in (
            "api/next",
            "api/next?rater=",
            "image/" + "0" * 64,
            "image/..%2F..%2Fstore.sqlite",
            "image/store.sqlite",
            "static/../store.sqlite",
            "static/index.html.bak",
            "nothing-here",
        ):
            status, _ = srv.get(path)
            assert 400 <= status < 500, (path, status)
        status, _ = request(srv.base() + "api/vote")  # GET on a POST route
        assert status == 405
        # A page at another host name (DNS rebinding) is refused.
        status, _ = srv.get("api/next?rater=ann", headers={"Host": "evil.example"})
        assert status == 400
        assert votes_in_store(root) == []
        # Still serving, and the image comes by id.
        status, state = srv.get("api/next?rater=ann")
        assert status == 200 and state["image"] == img
        status, png = srv.get("image/" + img)
        assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"


def test_token_is_required_when_set(small_store):
    root, truth = small_store
    img = _unlabelled(truth)[0]
    with Server(root, "--token", "s3cret-token") as srv:
        assert srv.url.endswith("?token=s3cret-token")
        for path in ("", "api/next?rater=ann", "image/" + img, "static/app.js"):
            assert srv.get(path)[0] == 403
            assert srv.get(path + ("&" if "?" in path else "?") + "token=wrong")[0] == 403
            assert srv.get(path + ("&" if "?" in path else "?") + "token=s3cret-token")[0] == 200
        status, _ = srv.post(
            "api/vote", {"request": "abcdefgh", "rater": "ann", "image": img, "answer": "yes"}
        )
        assert status == 403
        assert (
            request(
                srv.base() + "api/next?rater=ann", headers={"X-Tinysmile-Token": "s3cret-token"}
            )[0]
            == 200
        )
    assert votes_in_store(root) == []


def test_a_lan_host_gets_a_printed_token(small_store):
    """--host off loopback: a token is made up, printed in the URL and then required."""
    from tinysmile.data.store import Store
    from tinysmile.label.ratings import Ratings
    from tinysmile.label.server import TokenGate, create_app, open_listener

    # Bound, never listened on, closed at once: nothing on the LAN can connect.
    sock, url, token = open_listener("0.0.0.0", 0)
    sock.close()
    assert token is not None and len(token) >= 16
    assert url.endswith(f"/?token={token}")
    sock, url, same = open_listener("127.0.0.1", 0)
    sock.close()
    assert same is None and "token" not in url
    with Store(small_store[0], create=False) as store:
        app = create_app(Ratings(store, "unlabelled"), token=token, loopback=False)
    assert isinstance(app, TokenGate) and app.token == token


def test_unknown_store_and_queue_errors_are_one_line(tmp_path, capsys):
    assert main(["label", "serve", "--store", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    make_store(tmp_path / "s", labelled=4)
    assert main(["label", "serve", "--store", str(tmp_path / "s"), "--queue", "suspects"]) == 2
    assert "suspects queue is empty" in capsys.readouterr().err


def test_killing_the_server_mid_session_loses_and_doubles_nothing(tmp_path):
    truth = make_store(tmp_path / "s", unlabelled=30)
    acked: dict[str, tuple] = {}
    srv = Server(tmp_path / "s", "--raters-per-image", "2").start()
    try:
        for rater in ("ann", "bob"):
            for _ in range(6):
                img = srv.get(f"api/next?rater={rater}")[1]["image"]
                req = uuid.uuid4().hex
                status, _ = srv.vote(rater, img, "yes", req)
                assert status == 200
                acked[req] = (rater, img, "yes")
        # One more vote goes out, and the server dies before (or while) answering it.
        img = srv.get("api/next?rater=ann")[1]["image"]
        in_flight = uuid.uuid4().hex

        def send_and_lose_the_answer() -> None:
            try:
                srv.vote("ann", img, "no", in_flight)
            except OSError:
                pass  # the server died under it: the page would retry

        t = threading.Thread(target=send_and_lose_the_answer, daemon=True)
        t.start()
        srv.kill()
        t.join(30)
    finally:
        srv.stop()
    srv = Server(tmp_path / "s").start()
    try:
        # The page retries every request it has no answer to, with the same id.
        status, reply = srv.vote("ann", img, "no", in_flight)
        assert status == 200
        for req, (rater, image, answer) in list(acked.items())[-3:]:
            status, reply = srv.vote(rater, image, answer, req)
            assert status == 200 and reply["repeated"] is True
    finally:
        srv.stop()
    rows = votes_in_store(tmp_path / "s")
    stored = {r[0]: (r[1], r[2], r[3]) for r in rows}
    assert len(rows) == len(stored) == len(acked) + 1  # nothing doubled
    assert {k: stored[k] for k in acked} == acked  # nothing acknowledged lost
    assert stored[in_flight] == ("ann", img, "no")
    assert all(r[4] is None for r in rows)
    assert len(truth) == 30


def test_twenty_raters_at_once_lose_and_double_nothing(tmp_path):
    make_store(tmp_path / "s", unlabelled=120)
    errors: list = []
    acked: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + 4.0

    def rater(name: str) -> None:
        while time.monotonic() < stop_at:
            status, state = srv.get(f"api/next?rater={name}")
            if status != 200 or state["image"] is None:
                if status != 200:
                    errors.append((name, status, state))
                return
            req = uuid.uuid4().hex
            status, reply = srv.vote(name, state["image"], "yes", req)
            if status == 200:
                # Every other vote is retried once, as a page does after a lost answer.
                if int(req[0], 16) % 2 == 0:
                    again = srv.vote(name, state["image"], "yes", req)
                    if again[0] != 200 or not again[1]["repeated"]:
                        errors.append((name, "retry", again))
                with lock:
                    acked.append(req)
            else:
                errors.append((name, status, reply))

    with Server(tmp_path / "s", "--raters-per-image", "3") as srv:
        threads = [threading.Thread(target=rater, args=(f"r{i:02d}",)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    rows = votes_in_store(tmp_path / "s")
    assert errors == []
    assert len(acked) > 40  # the test measured something
    assert sorted(r[0] for r in rows) == sorted(acked)
    pairs = [(r[1], r[2]) for r in rows]
    assert len(pairs) == len(set(pairs))  # no rater answered an image twice


def test_the_page_needs_no_network():
    """No CDN: every script, style and image the page loads comes from this server."""
    import re
    from importlib import resources

    static = resources.files("tinysmile.label").joinpath("static")
    for name in ("index.html", "app.js", "app.css"):
        text = static.joinpath(name).read_text()
        assert not re.search(r"https?:|//[a-z0-9.-]+\.[a-z]{2,}|@import", text, re.IGNORECASE), name
    html = static.joinpath("index.html").read_text()
    assert re.findall(r'(?:src|href)="([^"]+)"', html) == ["static/app.css", "static/app.js"]
