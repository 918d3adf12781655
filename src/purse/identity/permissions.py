"""Roles and what they may do. Routes ask for a permission, never for a role.

Keeping the table here means a new route states its need (``require("users:manage")``)
and the review of who may do what happens in one place.
"""

from __future__ import annotations

from purse.identity.models import ROLES

_USER = frozenset({"wallet:own"})
PERMISSIONS: dict[str, frozenset[str]] = {
    "user": _USER,
    "merchant_member": _USER | {"merchant:own"},
    "agent": _USER | {"support:work"},
    "senior_agent": _USER | {"support:work", "support:approve"},
    "admin": _USER
    | {"support:work", "support:approve", "users:manage", "audit:read", "ledger:read"},
}
assert set(PERMISSIONS) == set(ROLES)


def allows(role: str, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())
