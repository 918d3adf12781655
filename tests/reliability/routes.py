"""The app's route table, flattened: every (method, path) a request can reach."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.routing import Mount


def route_table(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) for every route, through included routers and mounts."""
    found: list[tuple[str, str]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            context = getattr(route, "include_context", None)
            if context is not None:  # FastAPI's included router
                walk(route.original_router.routes, prefix + context.prefix)
            elif isinstance(route, Mount):
                found.append(("GET", prefix + route.path + "/{path}"))
            else:
                for method in sorted(getattr(route, "methods", None) or ()):
                    if method != "HEAD":
                        found.append((method, prefix + route.path))

    walk(list(app.routes), "")
    return sorted(set(found), key=lambda item: (item[1], item[0]))
