"""The OpenAPI document as a contract that clients are generated from.

FastAPI writes most of the document from the routes and the pydantic models;
this module adds what it cannot know, so that a generator (openapi-python-client,
openapi-generator, Kiota) makes a client a person would write by hand:

- **operation ids** that read as method names (``createTransfer``), not FastAPI's
  ``send_v1_wallet_transfers_post``, which changes whenever a path does;
- **security on every operation**: the bearer token where a route asks for one,
  and an explicit ``security: []`` where it does not, so a generator never
  attaches a token to sign-up or a readiness probe, nor forgets it elsewhere;
- the **Idempotency-Key** as what the server really requires: present, a string
  of printable ASCII within the configured length. The route declares it
  optional so that a missing key gets purse's own 400 ``idempotency_key_missing``
  (with its message and next step) rather than a generic validation error; only
  the document says "required".
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute

BEARER_AUTH = "bearerAuth"
# A merchant's server: its secret API key as the bearer (``/v1/merchant/...``).
MERCHANT_KEY_AUTH = "merchantKeyAuth"

# Printable ASCII, and no space at either end: HTTP trims a header value's ends, so a
# key starting or ending with a space would not arrive as it was sent.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$"

_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def operation_id(route: APIRoute) -> str:
    """The route function's name in camelCase: ``create_transfer`` is ``createTransfer``.

    The name alone, so that changing a path or a prefix leaves every generated
    client's method names alone, and renaming a function is a visible decision
    (tests/api/test_openapi.py lists every id). The tag is not repeated in the id:
    generators already group operations by their first tag (``api/wallet/
    create_transfer.py``, ``WalletApi.createTransfer``), so ``walletCreateTransfer``
    would say it twice; the same test checks that every operation has a tag.
    """
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def idempotency_key_schema(length_max: int) -> dict[str, Any]:
    """No example value on purpose: a key copied from the docs into every request would
    make the second one a replay (or, with another body, ``idempotency_key_reused``)."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": length_max,
        "pattern": IDEMPOTENCY_KEY_PATTERN,
    }


def complete(
    schema: dict[str, Any], *, idempotency_header: str, idempotency_key_length_max: int
) -> dict[str, Any]:
    """Add to FastAPI's document what it cannot know (see the module's docstring)."""
    schema["security"] = [{BEARER_AUTH: []}]
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _METHODS:
                continue
            # FastAPI lists the bearer scheme on routes that depend on it; the rest are
            # public, and say so rather than inherit the document's default.
            operation.setdefault("security", [])
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "header" and parameter["name"] == idempotency_header:
                    parameter["required"] = True
                    parameter["schema"] = idempotency_key_schema(idempotency_key_length_max)
    return schema
