"""`tinysmile label serve`: the rating page and its small JSON API (Starlette + uvicorn).

Routes (every one needs `?token=...` or an `X-Tinysmile-Token` header when the server
has a token):

    GET  /                      the page (tinysmile/label/static, shipped in the package)
    GET  /static/NAME           its script and style sheet
    GET  /image/ID              an image, by its 64-hex sample id only
    GET  /api/task              the task rated: its question and answer keys
    GET  /api/next?rater=NAME   the rater's next image and progress
    POST /api/vote              {"request", "rater", "image", "answer"}
    POST /api/undo              {"request" (of the vote to undo), "rater"}

A request the server refuses gets a 4xx with {"error": "..."}: bad JSON, a wrong field,
an unknown image, a vote twice on one image, a missing token.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import socket
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tinysmile.errors import TinysmileError
from tinysmile.label.ratings import RatingError, Ratings, page_keys

MAX_BODY = 4096  # a vote is ~200 bytes of JSON
STATIC_FILES = {"app.js": "text/javascript", "app.css": "text/css"}
IMAGE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".bmp": "image/bmp",
    ".webp": "image/webp",
    ".pgm": "image/x-portable-graymap",
    ".ppm": "image/x-portable-pixmap",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}
NO_STORE = {"Cache-Control": "no-store"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _static(name: str) -> bytes:
    return resources.files("tinysmile.label").joinpath("static", name).read_bytes()


class TokenGate:
    """Refuse every request without the server's token (raters on a LAN)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is not None and scope["type"] == "http":
            request = Request(scope)
            given = request.query_params.get("token") or request.headers.get(
                "x-tinysmile-token", ""
            )
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                await JSONResponse({"error": "missing or wrong token"}, 403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _json_body(request: Request) -> dict[str, Any]:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise RatingError("request body too large", 413)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise RatingError("request body too large", 413)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RatingError("body: expected a JSON object") from None
    if not isinstance(data, dict):
        raise RatingError("body: expected a JSON object")
    return data


def create_app(ratings: Ratings, token: str | None = None, loopback: bool = True) -> ASGIApp:
    """The ASGI app serving `ratings`; `token` gates every request when given."""

    async def page(request: Request) -> Response:
        return Response(_static("index.html"), media_type="text/html", headers=NO_STORE)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            raise HTTPException(404)
        return Response(_static(name), media_type=STATIC_FILES[name], headers=NO_STORE)

    async def image(request: Request) -> Response:
        path = Path(await run_in_threadpool(ratings.image_file, request.path_params["id"]))
        if not path.is_file():
            raise RatingError("image file missing from the store", 404)
        kind = IMAGE_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return FileResponse(path, media_type=kind)

    async def task(request: Request) -> Response:
        return JSONResponse(page_keys(ratings.task), headers=NO_STORE)

    async def next_image(request: Request) -> Response:
        state = await run_in_threadpool(ratings.next_for, request.query_params.get("rater"))
        return JSONResponse({**state, "queue": ratings.queue}, headers=NO_STORE)

    async def vote(request: Request) -> Response:
        data = await _json_body(request)
        result = await run_in_threadpool(
            ratings.vote,
            data.get("request"),
            data.get("rater"),
            data.get("image"),
            data.get("answer"),
        )
        state = await run_in_threadpool(ratings.next_for, data["rater"])
        return JSONResponse(
            {"vote": result.vote, "repeated": result.repeated, **state, "queue": ratings.queue},
            headers=NO_STORE,
        )

    async def undo(request: Request) -> Response:
        data = await _json_body(request)
        undone = await run_in_threadpool(ratings.undo, data.get("request"), data.get("rater"))
        state = await run_in_threadpool(ratings.next_for, data["rater"])
        # Show the undone image again, so the rater can answer it afresh.
        state["image"] = undone["image"]
        return JSONResponse(
            {**state, "repeated": undone["repeated"], "queue": ratings.queue}, headers=NO_STORE
        )

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RatingError)
        return JSONResponse({"error": str(exc)}, exc.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail}, exc.status_code)

    middleware = []
    if loopback and token is None:
        # A page elsewhere can point a name it controls at 127.0.0.1 (DNS rebinding);
        # its requests then carry that name as Host, and are refused here.
        middleware.append(
            Middleware(
                TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "[::1]", "::1"]
            )
        )
    app = Starlette(
        routes=[
            Route("/", page),
            Route("/static/{name}", static),
            Route("/image/{id}", image),
            Route("/api/task", task),
            Route("/api/next", next_image),
            Route("/api/vote", vote, methods=["POST"]),
            Route("/api/undo", undo, methods=["POST"]),
        ],
        middleware=middleware,
        exception_handlers={RatingError: refused, HTTPException: http_error},
    )
    return TokenGate(app, token)


def open_listener(
    host: str, port: int, token: str | None = None
) -> tuple[socket.socket, str, str | None]:
    """Bind the server's socket; returns it, the URL to give raters, and the token.

    Off loopback a token is required, and made up when not given.
    """
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(16)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise TinysmileError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/" + (f"?token={token}" if token else "")
    return sock, url, token


def serve(
    ratings: Ratings,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    say: Any = print,
) -> None:
    """Serve until interrupted."""
    import uvicorn

    sock, url, token = open_listener(host, port, token)
    cfg = ratings.config
    say(
        f"label serve: {url} (task {ratings.task}, queue {ratings.queue}, policy {cfg.policy}, "
        f"{cfg.raters} rater(s) per image); Ctrl-C stops"
    )
    app = create_app(ratings, token=token, loopback=is_loopback(host) and token is None)
    # log_config=None: uvicorn leaves the process's logging set-up alone (its warnings
    # still reach stderr through Python's last-resort handler).
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, log_level="warning", access_log=False, lifespan="off")
    )
    server.run(sockets=[sock])
