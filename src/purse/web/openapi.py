"""The OpenAPI document as a contract that clients are generated from.

FastAPI writes the document from the routes and the pydantic models; this module
adds what it cannot know, so that a generator (openapi-python-client,
openapi-generator, Kiota) makes a client a person would write by hand:

- **operation ids** that read as method names (``createTransfer``), not FastAPI's
  ``send_v1_wallet_transfers_post``, which changes whenever a path does.
"""

from __future__ import annotations

from fastapi.routing import APIRoute


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
