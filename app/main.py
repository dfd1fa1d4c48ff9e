"""``create_app()``: the FastAPI service. The lifespan builds the services (database, model, index) once."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import balance
from app.decoding import mark_stopping_on_signals
from app.errors import PayloadTooLargeError
from app.routers import admin, emotion, errors, health, music, text, tracks
from app.routers.errors import error_response
from app.services import Services
from app.settings import Settings

MULTIPART_OVERHEAD = 64 * 1024
WEB = Path(__file__).resolve().parent / "web"

DESCRIPTION = """Match music to emotion. Valence and arousal are always on [-1, 1].

Every ranking uses `score = lam * corr - (1 - lam) * KL / d`: the Pearson correlation of point embeddings and the
KL divergence of diagonal Gaussians in the shared emotion space; `corr` and `neg_kl` are reported per result."""


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 before they are read into memory or spooled to disk. A
    body without a Content-Length (chunked) is read here up to the limit first, so that going over it is a 413
    too, not a parse error of the half-read form."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        if length is None and scope.get("method") in ("POST", "PUT", "PATCH"):
            buffered = await self._read_within_limit(receive)
            if buffered is None:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, _replay(buffered, receive), send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise PayloadTooLargeError(self._detail())
            return message

        await self.app(scope, limited, send)

    async def _read_within_limit(self, receive: Receive) -> list[Message] | None:
        """The request's body messages, or None once they pass ``max_bytes``."""
        messages, received = [], 0
        while True:
            message = await receive()
            messages.append(message)
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                return None
            if message["type"] != "http.request" or not message.get("more_body", False):
                return messages

    def _detail(self) -> str:
        return f"request body larger than {self.max_bytes / 2**20:.1f} MiB (MOODSPACE_MAX_UPLOAD_MB)"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(413, "too_large", self._detail())(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` first, then whatever comes after (a disconnect)."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


class RequestMetrics:
    """Count each request by method, route and status, observe its latency, and give it a ``Server-Timing`` header
    (the time until the answer starts). Plain ASGI: Starlette's ``BaseHTTPMiddleware`` would run every request in a
    task of its own and stream the answer through a queue, about 0.3 ms of CPU per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = time.perf_counter() - start
                self._record(scope, message["status"], elapsed)
                headers = MutableHeaders(scope=message)
                headers.append("Server-Timing", f"app;dur={elapsed * 1000:.3f}")
            await send(message)

        await self.app(scope, receive, timed)

    @staticmethod
    def _record(scope: Scope, status: int, elapsed: float) -> None:
        services: Services | None = getattr(scope["app"].state, "services", None)
        if services is None:
            return
        route = getattr(scope.get("route"), "path", "unmatched")
        services.metrics.requests.labels(scope["method"], route, str(status)).inc()
        services.metrics.latency.labels(route).observe(elapsed)


def create_app(settings: Settings | None = None, *, services: Services | None = None,
               freeze_gc: bool = False) -> FastAPI:
    """The service. Tests pass ``services`` built around tiny models; otherwise the lifespan starts them.
    ``freeze_gc`` (a serving process): once started, everything loaded so far leaves the garbage collector's view
    (``gc.freeze``). The model, the sentence encoder and their libraries are half a million objects, and every
    full collection walked them all: a 250 ms pause in whichever request was running, the long tail of p99."""
    settings = settings or (services.settings if services else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mark_stopping_on_signals()
        app.state.services = services or Services.start(settings)
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            app.state.services.close()

    app = FastAPI(title="moodspace", version=version("moodspace"), description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    errors.install(app)
    app.add_middleware(RequestMetrics)
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes + MULTIPART_OVERHEAD)
    for router in (health.router, music.router, emotion.router, text.router, tracks.router, admin.router):
        app.include_router(router)
    _web_page(app)
    _api_docs(app)
    return app


def _api_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the assets of the installed ``swagger-ui-py`` package (Swagger UI 5, which reads
    OpenAPI 3.1), not from a CDN: the documentation works without internet."""
    app.mount("/docs-assets", StaticFiles(directory=str(files("swagger_ui") / "static")), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title="moodspace API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="/favicon.ico")


def _web_page(app: FastAPI) -> None:
    """The static page at / (no build step, no external CDN)."""
    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(WEB / "favicon.svg", media_type="image/svg+xml")


def serving_app() -> FastAPI:
    """The app of a `moodspace serve` process (uvicorn's factory, in every worker): its settings from the
    environment, ``Settings.threads`` torch and FAISS threads (left alone for tests and command-line jobs), and
    its slot in the processes' connection table (``app.balance``) where there are several."""
    import faiss
    import torch

    settings = Settings()
    torch.set_num_threads(settings.threads)
    faiss.omp_set_num_threads(settings.threads)
    balance.table()  # one of several processes: take a slot in their connection table now, so the others count it
    return create_app(settings, freeze_gc=True)
