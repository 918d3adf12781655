"""The app's route table, flattened: every (method, path) a request can reach.

FastAPI nests included routers, so ``app.routes`` alone does not list them all.
The table serves two readers: the 405 answer's ``Allow`` header (every method
any route on the path takes, not only the first route's) and the reliability
suite's authorization matrix.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp


def route_table(app: ASGIApp) -> list[tuple[str, str]]:
    """(method, path template) for every route, through included routers and mounts."""
    found: list[tuple[str, str]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            context = getattr(route, "include_context", None)
            if context is not None:  # FastAPI's included router
                walk(route.original_router.routes, prefix + context.prefix)
            elif isinstance(route, Mount):
                found.append(("GET", prefix + route.path + "/{path:path}"))
            else:
                for method in sorted(getattr(route, "methods", None) or ()):
                    if method != "HEAD":
                        found.append((method, prefix + route.path))

    walk(list(getattr(app, "routes", [])), "")
    return sorted(set(found), key=lambda item: (item[1], item[0]))


def _patterns(app: Starlette) -> list[tuple[re.Pattern[str], str, str]]:
    """Compiled once per app, kept on the app (routes do not change once it serves)."""
    patterns: list[tuple[re.Pattern[str], str, str]] | None = getattr(
        app.state, "route_patterns", None
    )
    if patterns is None:
        patterns = [(compile_path(path)[0], method, path) for method, path in route_table(app)]
        app.state.route_patterns = patterns
    return patterns


def allowed_methods(app: Starlette, path: str) -> list[str]:
    """Every method the resource at ``path`` takes, for a 405's ``Allow`` header.

    A path named literally by some route (``/v1/me/sessions/end-others``) is that
    resource, even where a template (``/v1/me/sessions/{session_id}``) matches it too.
    """
    matching = [
        (method, template) for pattern, method, template in _patterns(app) if pattern.match(path)
    ]
    literal = {method for method, template in matching if template == path}
    return sorted(literal or {method for method, _template in matching})
