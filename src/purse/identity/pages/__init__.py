"""HTML pages of the identity domain, one module per family of use cases.

Thin adapters like the JSON routes: check CSRF, open one transaction, call the
service, render. A refused form is shown again with the error in the user's
language and the fields they typed (never the password).
"""

from __future__ import annotations

from fastapi import APIRouter

from purse.identity.pages import entry, security, stepup

routers: list[APIRouter] = [entry.router, stepup.router, security.router]
