"""``create_app(settings)``: the FastAPI application. Nothing is built at import time."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, Field
from sqlalchemy import text
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from purse import __version__, migrate
from purse.assembly import Purse, assemble
from purse.db import Database
from purse.deps import IDEMPOTENCY_HEADER
from purse.errors import InternalError
from purse.problems import install_problem_handlers, problem_response, problem_responses
from purse.settings import Settings
from purse.web import docs
from purse.web import openapi as openapi_contract
from purse.web.limits import AdmissionMiddleware, BodyLimitMiddleware
from purse.web.security import SecurityHeadersMiddleware
from purse.web.text import ControlCharacterGuard
from purse.web.views import SignInNeeded, sign_in_redirect
from purse.workers.runner import JobRunner

log = structlog.get_logger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestContextMiddleware:
    """Request id on every response and log line, an access log, and HTTP metrics.

    A caller's ``X-Request-ID`` is kept when it is well-formed, so ids can be
    followed across services; otherwise a new one is made.
    """

    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "purse_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry
        )
        self.latency = Histogram(
            "purse_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        status_sent = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status, status_sent = message["status"], True
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:
            # Answered here, inside the request context, so the 500 and its log line
            # carry the request id. The answer is generic: nothing about the internals.
            log.error("request.crashed", error_type=type(error).__name__, exc_info=error)
            if status_sent:
                raise
            response = problem_response(Request(scope), InternalError())
            await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope["method"]
            self.requests.labels(method, template, str(status)).inc()
            self.latency.labels(method, template).observe(elapsed)
            log.info(
                "http.request",
                method=method,
                path=template,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")


class HealthRead(BaseModel):
    status: str = Field(examples=["ok"])


class Readiness(StrEnum):
    ready = "ready"
    not_ready = "not_ready"


class ReadinessRead(BaseModel):
    status: Readiness
    checks: dict[str, str] = Field(
        description="Each thing readiness needs: `ok`, `pending` (migrations) or `unreachable`",
        examples=[{"database": "ok", "migrations": "ok"}],
    )


def app_of_a_server_process() -> FastAPI:
    """The app of one of the processes of ``purse serve --workers N``.

    Each process builds its own from the environment the command left for it; the
    background jobs run in a process of their own, not in these.
    """
    from purse.logs import configure_logging
    from purse.server import settle_heap

    settings = Settings()
    configure_logging(settings.log_level)
    application = create_app(settings, run_workers=False)
    settle_heap()
    return application


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    run_workers: bool = False,
    purse: Purse | None = None,
) -> FastAPI:
    """Build the app for ``settings`` (or for an assembled ``purse``).

    ``run_workers`` also runs every lane of background jobs in threads of this process.
    """
    purse = purse if purse is not None else assemble(settings, database=database)
    database = purse.database
    registry = CollectorRegistry()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runner = JobRunner(database, purse.jobs()) if run_workers else None
        if runner is not None:
            runner.start_threads()
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
            purse.dispose()

    app = FastAPI(
        title="purse",
        version=__version__,
        summary="A self-hostable digital wallet on a double-entry ledger.",
        lifespan=lifespan,
        responses=problem_responses(),
        docs_url=None,  # served by purse.web.docs from vendored files, under purse's CSP
        redoc_url=None,
        generate_unique_id_function=openapi_contract.operation_id,
        # Relative: the API is where this document is served from, whatever the host a
        # deployment gives it (behind a proxy that sets root_path, FastAPI puts that first).
        # A generated client takes the base URL when it is made, e.g. openapi-python-client's
        # Client(base_url="https://wallet.example"); the paths carry /v1 themselves.
        servers=[{"url": "/", "description": "The purse server this document is served by"}],
    )
    app.state.settings = settings
    app.state.purse = purse
    app.state.database = database
    app.state.identity = purse.identity
    app.state.funding = purse.funding
    app.state.wallet = purse.wallet
    install_problem_handlers(app)
    # Middlewares run outermost first: the security headers (added last, below), the request
    # id and access log, the body read whole (bounded), control characters refused, then a
    # place among the requests being worked on, then the routes. A body is read before a
    # place is taken, so a slow client never holds one (see purse.web.limits), and a request
    # with a NUL in it never takes one.
    app.add_middleware(
        AdmissionMiddleware,
        requests_max=settings.http_requests_max,
        queue_max=settings.http_queue_max,
        queue_seconds=settings.http_queue_seconds,
        registry=registry,
    )
    Gauge(
        "purse_db_writers_waiting",
        "Transactions waiting for the writer's turn on SQLite (at most PURSE_DB_WAIT_SECONDS)",
        registry=registry,
    ).set_function(lambda: database.writers_waiting)
    app.add_middleware(ControlCharacterGuard)
    app.add_middleware(
        BodyLimitMiddleware,
        bytes_max=settings.http_body_bytes_max,
        timeout_seconds=settings.http_body_timeout_seconds,
        caps=purse.body_caps(),
    )
    app.add_middleware(RequestContextMiddleware, registry=registry)
    for router in purse.routers():
        app.include_router(router)
    app.include_router(docs.router)

    @app.exception_handler(SignInNeeded)
    async def _sign_in(_request: Request, needed: SignInNeeded) -> Response:
        return sign_in_redirect(needed.path)

    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's schema, completed into a contract clients are generated from."""
        if app.openapi_schema is None:
            app.openapi_schema = openapi_contract.complete(
                generate_openapi(),
                idempotency_header=IDEMPOTENCY_HEADER,
                idempotency_key_length_max=settings.idempotency_key_length_max,
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    app.mount("/static", StaticFiles(packages=[("purse.web", "static")]), name="static")
    app.add_middleware(SecurityHeadersMiddleware)

    @app.get("/healthz", tags=["operations"], response_model=HealthRead)
    def check_health() -> HealthRead:
        """The process is up."""
        return HealthRead(status="ok")

    @app.get(
        "/readyz",
        tags=["operations"],
        responses={
            200: {"model": ReadinessRead, "description": "Ready"},
            503: {"model": ReadinessRead, "description": "Not ready: see `checks`"},
        },
    )
    def check_readiness() -> Any:
        """The database answers and its schema is at the current migration."""
        checks: dict[str, str] = {}
        try:
            with database.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
            checks["migrations"] = "ok" if migrate.is_current(database) else "pending"
        except Exception as error:
            log.warning("readyz.database_unreachable", error_type=type(error).__name__)
            checks["database"] = "unreachable"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            ReadinessRead(
                status=Readiness.ready if ready else Readiness.not_ready, checks=checks
            ).model_dump(mode="json"),
            status_code=200 if ready else 503,
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=Response,
        responses={
            200: {
                "description": "The Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    def get_metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
