"""API fuzz: schemathesis against the live server's ``/openapi.json``, as each role.

Every operation of the schema, every check schemathesis has (``--checks all``,
including ``ignored_auth``), a fixed seed, bounded in examples and seconds. Run
as an anonymous caller, as a user with money, and as an admin. Must be 0: server
errors, responses that break the schema (status, content type, headers, body),
and ignored authentication. Other findings are reported per check: for
instance ``positive_data_acceptance``, where a schema-valid request is refused
by a business rule the schema cannot state (a weak password, a wrong code).
Afterwards the ledger check passes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from harness import PASSWORD, RESULTS, Server, Summary, ledger_verify, size

SEED = 20261123
MUST_BE_ZERO = {
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "allow_header_conformance",
    "ignored_auth",
}


def schemathesis(url: str, report: Path, headers: dict[str, str]) -> dict[str, object]:
    """One bounded schemathesis run; its JSON report."""
    report.mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--seed",
        str(SEED),
        "--max-examples",
        str(size(10, 100)),
        "--max-time",
        str(size(12, 120)),
        "--request-timeout",
        "10",
        "--workers",
        "1",
        "--report",
        "json",
        "--report-json-path",
        str(report / "report.json"),
        "--no-color",
    ]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    done = subprocess.run(  # noqa: S603 - the fuzzer, fixed arguments
        command,
        capture_output=True,
        text=True,
        timeout=size(120, 600),
        check=False,
        cwd=report,  # its example cache (.schemathesis/) stays with the results
    )
    (report / "output.txt").write_text(done.stdout + done.stderr, encoding="utf-8")
    loaded: dict[str, object] = json.loads((report / "report.json").read_text(encoding="utf-8"))
    return loaded


@pytest.mark.parametrize("role", ["anonymous", "user", "admin", "merchant_key"])
def test_api_fuzz(
    database_url: str, database_kind: str, seeded: Callable[..., None], role: str
) -> None:
    seeded(people={"fuzz_user": 1_000_000, "fuzz_friend": 0}, admins=["fuzz_admin"])
    with Server(database_url, f"fuzz-{role}-{database_kind}") as server:
        headers: dict[str, str] = {}
        if role != "anonymous":
            handle = "fuzz_admin" if role == "admin" else "fuzz_user"
            token = httpx.post(
                f"{server.url}/v1/auth/token",
                json={"identifier": handle, "password": PASSWORD},
                timeout=30,
            ).json()["access_token"]
            headers["Authorization"] = f"Bearer {token}"
        if role == "merchant_key":  # the user's shop's live key: every route, as its server
            headers["Authorization"] = f"Bearer {merchant_key(server.url, headers)}"
        report = schemathesis(server.url, RESULTS / f"fuzz-{role}-{database_kind}", headers)
        log = server.log_text()
    failures = report["failures"]
    assert isinstance(failures, list)
    by_check: dict[str, int] = {}
    where: dict[str, list[str]] = {}
    for failure in failures:
        name = checks_of(failure)
        by_check[name] = by_check.get(name, 0) + int(failure["count"])
        where[name] = sorted(failure.get("operations", []))[:5]
    operations = report["operations"]
    cases = report["test_cases"]
    assert isinstance(operations, dict) and isinstance(cases, dict)
    verify = ledger_verify(database_url)
    record = Summary(
        f"api_fuzz_{role}",
        database_kind,
        {
            "seed": SEED,
            "operations_tested": operations["tested"],
            "operations_total": operations["total"],
            "cases": cases["generated"],
            "stop_reason": report["stop_reason"],
            "failures_per_check": by_check,
            "server_errors_in_log": log.count('"level": "error"'),
            "ledger_verify_ok": verify["ok"],
        },
    ).emit()
    assert record["cases"] > 0 and record["operations_tested"] > 0, record
    bad = {name: where[name] for name in by_check if name in MUST_BE_ZERO}
    assert not bad, (bad, record)
    assert verify["ok"], verify["problems"]


def merchant_key(url: str, as_user: dict[str, str]) -> str:
    """A shop of the user's, and a live secret key of it with every scope."""
    shop = httpx.post(
        f"{url}/v1/merchants",
        json={"name_en": "Fuzz Shop", "name_zh": "模糊测试店"},
        headers=as_user,
        timeout=30,
    ).json()["id"]
    return str(
        httpx.post(
            f"{url}/v1/merchants/{shop}/api-keys",
            json={"name": "fuzz", "mode": "live", "scopes": ["payments", "refunds", "read"]},
            headers=as_user,
            timeout=30,
        ).json()["secret"]
    )


# schemathesis' failure types, by the check that finds them.
CHECKS = {
    "ServerError": "not_a_server_error",
    "UndefinedStatusCode": "status_code_conformance",
    "UndefinedContentType": "content_type_conformance",
    "MissingHeaders": "response_headers_conformance",
    "MalformedMediaType": "content_type_conformance",
    "JsonSchemaError": "response_schema_conformance",
    "MissingContentType": "content_type_conformance",
    "IgnoredAuth": "ignored_auth",
    "AcceptedNegativeData": "negative_data_rejection",
    "RejectedPositiveData": "positive_data_acceptance",
    "MissingHeaderNotRejected": "missing_required_header",
    "UnsupportedMethodResponse": "unsupported_method",
    "MissingAllowHeader": "allow_header_conformance",
    "AllowHeaderMismatch": "allow_header_conformance",
    "UseAfterFree": "use_after_free",
    "EnsureResourceAvailability": "ensure_resource_availability",
}


def checks_of(failure: dict[str, object]) -> str:
    kind = str(failure["type"])
    return CHECKS.get(kind, kind)
