"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served by purse itself.

FastAPI's own pages load both renderers from a CDN and start them with an inline
script: purse's CSP forbids both, and a self-hosted wallet cannot count on the
internet anyway. These pages load the copies vendored under ``static/vendor``
(recorded in ``web/VENDORED.md``) and start them from ``static/docs-init.js``,
which reads the schema URL from the page. Swagger UI runs under purse's strict
CSP; ``/redoc`` gets the policy ReDoc needs (``REDOC_CONTENT_SECURITY_POLICY``,
chosen by the security headers middleware).
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from purse.web.security import REDOC_PATH

SWAGGER_UI_PATH = "/docs"
SWAGGER_UI = "/static/vendor/swagger-ui-dist-5.35.0"
REDOC = "/static/vendor/redoc-2.5.4"

router = APIRouter(include_in_schema=False)


def _docs_page(request: Request, *, title: str, head: str, root_id: str) -> HTMLResponse:
    openapi_url = request.app.openapi_url
    assert openapi_url, "the API docs need the OpenAPI schema"
    return HTMLResponse(
        f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{escape(request.app.title)} API · {title}</title>
  <link rel="stylesheet" href="/static/docs.css">
  {head}
  <script src="/static/docs-init.js" defer></script>
</head>
<body>
  <div id="{root_id}" data-openapi-url="{escape(openapi_url)}"></div>
</body>
</html>
"""
    )


@router.get(SWAGGER_UI_PATH, response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    return _docs_page(
        request,
        title="Swagger UI",
        head=f"""<link rel="icon" type="image/png" href="{SWAGGER_UI}/favicon-32x32.png">
  <link rel="stylesheet" href="{SWAGGER_UI}/swagger-ui.css">
  <script src="{SWAGGER_UI}/swagger-ui-bundle.js" defer></script>""",
        root_id="swagger-ui",
    )


@router.get(REDOC_PATH, response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    return _docs_page(
        request,
        title="ReDoc",
        # No icon of its own; "data:," keeps the browser from asking for /favicon.ico.
        head=f"""<link rel="icon" href="data:,">
  <script src="{REDOC}/redoc.standalone.js" defer></script>""",
        root_id="redoc",
    )
