"""The OpenAPI document as a contract: valid, and good enough to generate a client from.

Every operation id is listed here, so that renaming one (which renames a method in
every generated client) is a decision made in review, not a side effect. The same
goes for which operations are public. The client generated from this document is
exercised against a live server in test_generated_client.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from factories import make_settings
from purse.app import create_app
from purse.operations import kinds
from purse.operations.rules import check_idempotency_key
from purse.web.openapi import IDEMPOTENCY_KEY_PATTERN

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
    "openMerchant": "POST /v1/merchants",
    "listMerchants": "GET /v1/merchants",
    "getMerchant": "GET /v1/merchants/{merchant_id}",
    "listApiKeys": "GET /v1/merchants/{merchant_id}/api-keys",
    "createApiKey": "POST /v1/merchants/{merchant_id}/api-keys",
    "revokeApiKey": "POST /v1/merchants/{merchant_id}/api-keys/{key_id}/revoke",
    "rollApiKey": "POST /v1/merchants/{merchant_id}/api-keys/{key_id}/roll",
    "keyMerchant": "GET /v1/merchant",
    "listMembers": "GET /v1/merchants/{merchant_id}/members",
    "addMember": "POST /v1/merchants/{merchant_id}/members",
    "changeMemberRole": "PUT /v1/merchants/{merchant_id}/members/{user_id}",
    "removeMember": "DELETE /v1/merchants/{merchant_id}/members/{user_id}",
    "createPayment": "POST /v1/merchant/payments",
    "getPayment": "GET /v1/merchant/payments/{reference}",
    "listPayments": "GET /v1/merchant/payments",
    "capturePayment": "POST /v1/merchant/payments/{reference}/capture",
    "voidPayment": "POST /v1/merchant/payments/{reference}/void",
    "refundPayment": "POST /v1/merchant/payments/{reference}/refunds",
    "listRefunds": "GET /v1/merchant/payments/{reference}/refunds",
    "changeMerchant": "PATCH /v1/merchants/{merchant_id}",
    "getCheckout": "GET /v1/checkout/{reference}",
    "approvePayment": "POST /v1/checkout/{reference}/approve",
    "getBalance": "GET /v1/merchant/balance",
    "getMerchantBalance": "GET /v1/merchants/{merchant_id}/balance",
    "listWebhookEndpoints": "GET /v1/merchants/{merchant_id}/webhook-endpoints",
    "createWebhookEndpoint": "POST /v1/merchants/{merchant_id}/webhook-endpoints",
    "getWebhookEndpoint": "GET /v1/merchants/{merchant_id}/webhook-endpoints/{endpoint_id}",
    "rotateWebhookSecret": (
        "POST /v1/merchants/{merchant_id}/webhook-endpoints/{endpoint_id}/rotate-secret"
    ),
    "disableWebhookEndpoint": (
        "POST /v1/merchants/{merchant_id}/webhook-endpoints/{endpoint_id}/disable"
    ),
    "enableWebhookEndpoint": (
        "POST /v1/merchants/{merchant_id}/webhook-endpoints/{endpoint_id}/enable"
    ),
    "listWebhookDeliveries": (
        "GET /v1/merchants/{merchant_id}/webhook-endpoints/{endpoint_id}/deliveries"
    ),
    "resendWebhook": "POST /v1/merchants/{merchant_id}/webhook-deliveries/{delivery_id}/resend",
}

# Callable without a bearer token. Everything else needs one.
PUBLIC = {
    "signUp",
    "verifyContact",
    "requestVerificationCode",
    "requestPasswordReset",
    "confirmPasswordReset",
    "signIn",
    "refreshToken",
    "listFailureReasons",
    "receiveProviderEvent",  # signed by the provider instead (see its description)
    "checkHealth",
    "checkReadiness",
    "getMetrics",
}

# Called by a merchant's server with its API key instead of a person's token.
MERCHANT_KEY = {
    "keyMerchant",
    "createPayment",
    "getPayment",
    "listPayments",
    "capturePayment",
    "voidPayment",
    "refundPayment",
    "listRefunds",
    "getBalance",
}

MOVES_MONEY = {
    "createTransfer",
    "payMoneyRequest",
    "createTopUp",
    "createWithdrawal",
    "createConversion",
    "createPayment",  # a merchant's: every merchant POST that makes something takes a key
    "capturePayment",
    "voidPayment",
    "refundPayment",
    "approvePayment",  # the customer's approval: a hold, or the payment itself
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


def test_security_is_said_on_every_operation(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"] == {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "An access token from POST /v1/auth/token (`signIn`); "
            "renew it with `refreshToken`",
        },
        "merchantKeyAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "A merchant's secret API key, sk_test_... or sk_live_... "
            "(a merchant's server)",
        },
    }
    assert spec["security"] == [{"bearerAuth": []}]
    public = set()
    for operation_id, operation in by_id(spec).items():
        assert "security" in operation, operation_id
        if operation["security"] == []:
            public.add(operation_id)
        elif operation_id in MERCHANT_KEY:
            assert operation["security"] == [{"merchantKeyAuth": []}], operation_id
        else:
            assert operation["security"] == [{"bearerAuth": []}], operation_id
    assert public == PUBLIC
    callback = by_id(spec)["receiveProviderEvent"]["description"]
    assert "simulator-signature" in callback and "HMAC-SHA256" in callback


def test_the_security_the_document_states_is_what_the_server_does(
    spec: dict[str, Any], client: TestClient
) -> None:
    """Without a token, every protected operation answers 401 (before reading the
    request: who, before what) and no public one does."""
    for method, path, operation in operations(spec):
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        response = client.request(method.upper(), concrete)
        if operation["security"]:
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.headers["www-authenticate"] == "Bearer"
        else:
            assert response.status_code != 401, (method, path)


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
        "Readiness",
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


def test_the_idempotency_key_is_a_required_string(spec: dict[str, Any]) -> None:
    with_key = {}
    for operation_id, operation in by_id(spec).items():
        for parameter in operation.get("parameters", []):
            if parameter["name"].lower() == "idempotency-key":
                with_key[operation_id] = parameter
    assert set(with_key) == MOVES_MONEY
    for parameter in with_key.values():
        assert parameter["in"] == "header" and parameter["required"] is True
        assert parameter["schema"] == {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,  # settings.idempotency_key_length_max
            "pattern": IDEMPOTENCY_KEY_PATTERN,
        }


def test_the_idempotency_key_length_is_the_configured_one(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url, idempotency_key_length_max=64))
    transfer = app.openapi()["paths"]["/v1/wallet/transfers"]["post"]
    [key] = [p for p in transfer["parameters"] if p["name"] == "Idempotency-Key"]
    assert key["schema"]["maxLength"] == 64


@settings(max_examples=200, deadline=None)
@given(st.from_regex(IDEMPOTENCY_KEY_PATTERN, fullmatch=True).filter(lambda k: len(k) <= 255))
def test_every_key_the_document_allows_the_server_takes(key: str) -> None:
    assert check_idempotency_key(key, length_max=255) == key


def test_the_idempotency_key_pattern_refuses_what_http_would_change() -> None:
    pattern = re.compile(IDEMPOTENCY_KEY_PATTERN)
    for good in ("a", "5b0f7d0e-4c5e", "a b", "~!#"):
        assert pattern.fullmatch(good), good
    for bad in ("", " a", "a ", "a\tb", "ключ", "a\x7f"):
        assert not pattern.fullmatch(bad), bad


def test_servers_name_where_the_api_is(sqlite_url: str) -> None:
    """Relative, so the document is right on any host; behind a proxy that mounts purse
    under a prefix (ASGI root_path), the prefix comes first."""
    app = create_app(make_settings(sqlite_url))
    with TestClient(app) as plain:
        servers = plain.get("/openapi.json").json()["servers"]
    assert [server["url"] for server in servers] == ["/"]
    behind_proxy = create_app(make_settings(sqlite_url))
    with TestClient(behind_proxy, root_path="/purse") as prefixed:
        servers = prefixed.get("/openapi.json").json()["servers"]
    assert [server["url"] for server in servers] == ["/purse", "/"]
