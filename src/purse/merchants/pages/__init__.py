"""HTML pages of merchants: the hosted checkout (customers), and the dashboard (staff).

Thin adapters like the JSON routes: check CSRF, open one transaction, call the service,
render; a refused form is shown again with its error.
"""

from __future__ import annotations

from fastapi import APIRouter

from purse.merchants.pages import checkout, dashboard, developers

routers: list[APIRouter] = [checkout.router, dashboard.router, developers.router]

__all__ = ["routers"]
