"""HTML pages of the wallet, one module per family of use cases.

Thin adapters like the JSON routes: check CSRF, open one transaction, call the
service, render; a refused form is shown again (:func:`purse.web.forms.form_action`).
"""

from __future__ import annotations

from fastapi import APIRouter

from purse.wallet.pages import banking, conversion, history, home, sending

routers: list[APIRouter] = [
    home.router,
    sending.router,
    banking.router,
    conversion.router,
    history.router,
]
