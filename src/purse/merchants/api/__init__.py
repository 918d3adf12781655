"""JSON routes of merchants: their staff's (people), their servers' (API keys), and the
customer's side of a payment (checkout).

Thin adapters: parse, authenticate, open one transaction, call one service, render.
"""

from __future__ import annotations

from fastapi import APIRouter

from purse.merchants.api import checkout, hooks, server, staff

routers: list[APIRouter] = [staff.router, hooks.router, server.router, checkout.router]

__all__ = ["routers"]
