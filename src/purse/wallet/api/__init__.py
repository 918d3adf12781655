"""JSON routes of the wallet, one module per family of use cases.

Thin adapters: parse, authenticate, open one transaction, call one service,
render. Every POST that moves money needs an ``Idempotency-Key`` header; a retry
with the same key answers with the first operation (``Idempotent-Replayed: true``).
"""

from __future__ import annotations

from fastapi import APIRouter

from purse.wallet.api import banking, conversion, history, operators, sending

routers: list[APIRouter] = [
    history.router,
    sending.router,
    banking.router,
    conversion.router,
    operators.router,
]

__all__ = ["routers"]
