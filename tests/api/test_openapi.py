"""The OpenAPI document as a contract: valid, and good enough to generate a client from.

Every operation id is listed here, so that renaming one (which renames a method in
every generated client) is a decision made in review, not a side effect.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from factories import make_settings
from purse.app import create_app
from purse.operations import kinds

# operationId: "METHOD path". A change here changes every generated client.
OPERATION_IDS = {
    "signUp": "POST /v1/auth/signup",
    "verifyContact": "POST /v1/auth/verify",
    "requestVerificationCode": "POST /v1/auth/codes",
    "requestPasswordReset": "POST /v1/auth/password-reset",
    "confirmPasswordReset": "POST /v1/auth/password-reset/confirm",
    "signIn": "POST /v1/auth/token",
    "refreshToken": "POST /v1/auth/refresh",
    "signOut": "POST /v1/auth/logout",
    "stepUp": "POST /v1/auth/step-up",
    "getMe": "GET /v1/me",
    "listMySessions": "GET /v1/me/sessions",
    "endMySession": "DELETE /v1/me/sessions/{session_id}",
    "endMyOtherSessions": "POST /v1/me/sessions/end-others",
    "beginTotp": "POST /v1/me/2fa/totp",
    "disableTotp": "DELETE /v1/me/2fa/totp",
    "confirmTotp": "POST /v1/me/2fa/totp/confirm",
    "regenerateRecoveryCodes": "POST /v1/me/2fa/recovery-codes",
    "changePassword": "POST /v1/me/password",
    "changeContact": "POST /v1/me/contact",
    "confirmContact": "POST /v1/me/contact/confirm",
    "changeUserRole": "PUT /v1/admin/users/{user_id}/role",
    "listAllBalances": "GET /v1/admin/balances",
    "listBalances": "GET /v1/wallet/balances",
    "listActivity": "GET /v1/wallet/activity",
    "getOperation": "GET /v1/wallet/operations/{reference}",
    "getSpending": "GET /v1/wallet/spending",
    "listStatements": "GET /v1/wallet/statements",
    "requestStatement": "POST /v1/wallet/statements",
    "getStatement": "GET /v1/wallet/statements/{statement_id}",
    "getStatementFile": "GET /v1/wallet/statements/{statement_id}/file",
    "listFailureReasons": "GET /v1/wallet/failure-reasons",
    "findRecipient": "GET /v1/wallet/recipients",
    "createTransfer": "POST /v1/wallet/transfers",
    "listMoneyRequests": "GET /v1/wallet/requests",
    "createMoneyRequest": "POST /v1/wallet/requests",
    "payMoneyRequest": "POST /v1/wallet/requests/{request_id}/pay",
    "declineMoneyRequest": "POST /v1/wallet/requests/{request_id}/decline",
    "cancelMoneyRequest": "POST /v1/wallet/requests/{request_id}/cancel",
    "getPaymentLink": "GET /v1/wallet/receive",
    "getPaymentLinkQr": "GET /v1/wallet/receive/qr.svg",
    "createTopUp": "POST /v1/wallet/top-ups",
    "createWithdrawal": "POST /v1/wallet/withdrawals",
    "listFxRates": "GET /v1/wallet/fx-rates",
    "createQuote": "POST /v1/wallet/quotes",
    "createConversion": "POST /v1/wallet/conversions",
    "listFundingSources": "GET /v1/wallet/funding-sources",
    "addFundingSource": "POST /v1/wallet/funding-sources",
    "removeFundingSource": "DELETE /v1/wallet/funding-sources/{funding_source_id}",
    "receiveProviderEvent": "POST /v1/funding/providers/{provider_name}/events",
    "checkHealth": "GET /healthz",
    "checkReadiness": "GET /readyz",
    "getMetrics": "GET /metrics",
}

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(sqlite_url))) as test_client:
        yield test_client


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    loaded: dict[str, Any] = response.json()
    return loaded


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, path_item in spec["paths"].items():
        for method, operation in path_item.items():
            if method in HTTP_METHODS:
                yield method, path, operation


def by_id(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {operation["operationId"]: operation for _m, _p, operation in operations(spec)}


def test_the_document_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)


def test_the_validator_can_fail(spec: dict[str, Any]) -> None:
    spec["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ] = {"$ref": "#/components/schemas/NoSuchSchema"}
    with pytest.raises(Exception, match="NoSuchSchema"):
        validate(spec)


def test_operation_ids_are_readable_unique_and_stable(spec: dict[str, Any]) -> None:
    found = [(op["operationId"], f"{m.upper()} {p}") for m, p, op in operations(spec)]
    ids = [operation_id for operation_id, _where in found]
    assert len(ids) == len(set(ids)), "operation ids must be unique"
    for operation_id in ids:
        # camelCase words from the function's name: no path, no version, no method.
        assert re.fullmatch(r"[a-z]+(?:[A-Z0-9][a-z0-9]*)*", operation_id), operation_id
        assert "V1" not in operation_id and "_" not in operation_id, operation_id
        assert not re.search(r"(Get|Post|Put|Patch|Delete)$", operation_id), operation_id
    assert dict(found) == OPERATION_IDS


def test_every_operation_is_tagged_and_documented(spec: dict[str, Any]) -> None:
    """Generators group operations by their first tag, and turn the description into
    the method's docstring."""
    for method, path, operation in operations(spec):
        assert operation.get("tags"), (method, path)
        assert operation.get("description"), (method, path)


def enums_inline(node: Any, where: str, found: list[str]) -> None:
    """Every inline ``enum`` (and ``const``) under ``node``."""
    if isinstance(node, dict):
        for key in ("enum", "const"):
            if key in node:
                found.append(where)
        for key, value in node.items():
            enums_inline(value, f"{where}/{key}", found)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            enums_inline(value, f"{where}/{index}", found)


def test_closed_sets_are_named_enums(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    named = {name for name, schema in schemas.items() if "enum" in schema}
    assert {
        "OperationStatus",
        "Direction",
        "MoneyRequestDirection",
        "MoneyRequestStatus",
        "StatementFormat",
        "StatementStatus",
        "FundingSourceKind",
        "ProviderEventStatus",
        "ContactChannel",
        "Locale",
        "Role",
        "TokenType",
        "SignUpStatus",
    } <= named
    for name in named:
        assert schemas[name]["type"] == "string", name
    inline: list[str] = []
    enums_inline(spec["paths"], "#/paths", inline)
    for name, schema in schemas.items():
        if name not in named:
            enums_inline(schema, f"#/components/schemas/{name}", inline)
    # The one constant allowed inline: each variant's tag in a discriminated union.
    assert sorted(inline) == [
        "#/components/schemas/BankAccountCreate/properties/kind",
        "#/components/schemas/CardCreate/properties/kind",
    ]
    body = by_id(spec)["addFundingSource"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["discriminator"]["mapping"] == {
        "card": "#/components/schemas/CardCreate",
        "bank_account": "#/components/schemas/BankAccountCreate",
    }
    activity = {p["name"]: p["schema"] for p in by_id(spec)["listActivity"]["parameters"]}
    assert {"$ref": "#/components/schemas/OperationStatus"} in activity["status"]["anyOf"]
    assert {"$ref": "#/components/schemas/Direction"} in activity["direction"]["anyOf"]


def test_an_operation_kind_is_an_open_string_naming_the_registered_kinds(
    spec: dict[str, Any],
) -> None:
    """Kinds are registered by domains as purse grows; a generated enum would refuse the
    next one, so the document says string, with today's kinds as examples."""
    kind = spec["components"]["schemas"]["OperationRead"]["properties"]["kind"]
    registered = [registered_kind.name for registered_kind in kinds.registered()]
    assert {"send", "top_up", "withdrawal", "convert"} <= set(registered)
    assert kind["type"] == "string" and "enum" not in kind
    assert kind["examples"] == registered
    assert ", ".join(registered) in kind["description"]
