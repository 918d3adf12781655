"""A client generated from the live ``/openapi.json`` moves money against a live server.

The proof that the document is good enough for an SDK: openapi-python-client
generates a package from what the server publishes (warnings are failures: a
warning means an operation or a schema it could not model), the package is
imported, and everything below goes through it alone: signing in, reading the
activity, sending with an ``Idempotency-Key``, replaying it, reading the
operation back and both balances. The figures go out as one JSON line.
"""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from importlib.util import find_spec
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from e2e.support import LiveServer
from purse.assembly import Purse
from wallet_support import PASSWORD, make_user, top_up

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
GENERATION_TIMEOUT_SECONDS = 120
RESULTS = Path(__file__).resolve().parents[2] / "results" / "api"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def generate(spec_path: Path, folder: Path, package: str) -> float:
    """Generate the client package into ``folder``; the seconds it took."""
    config = folder / "config.json"
    # No post hooks: by default the generator runs formatters, which this test needs
    # neither the time nor (for some of them) the network for.
    config.write_text(
        json.dumps(
            {"post_hooks": [], "package_name_override": package, "project_name_override": package}
        ),
        encoding="utf-8",
    )
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - the generator, fixed arguments
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(spec_path),
            "--config",
            str(config),
            "--output-path",
            str(folder / "client"),
            "--meta",
            "uv",
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=GENERATION_TIMEOUT_SECONDS,
        check=False,
        cwd=folder,
    )
    elapsed = time.perf_counter() - started
    importlib.invalidate_caches()  # the folder is new: let the import system see it
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    return elapsed


@pytest.fixture
def imported(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """Where the generated package will be and its (unique) name; forgotten afterwards."""
    package = f"purse_client_{uuid.uuid4().hex[:8]}"
    sys.path.insert(0, str(tmp_path / "client"))
    try:
        yield tmp_path, package
    finally:
        sys.path.remove(str(tmp_path / "client"))
        for name in [name for name in sys.modules if name.split(".")[0] == package]:
            del sys.modules[name]


def module(package: str, name: str) -> ModuleType:
    return importlib.import_module(f"{package}.{name}")


def value(money: Any) -> Decimal:
    return Decimal(money.value)


def test_a_generated_client_moves_money(
    purse: Purse, imported: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, package = imported
    database = purse.database
    sender = make_user(database, purse.identity, handle="gen_wang", display_name="Wang Wei")
    make_user(database, purse.identity, handle="gen_li", display_name="Li Na")
    top_up(purse.wallet, sender, amount_minor=100_00)

    with LiveServer(database) as server, ExitStack() as clients:
        spec = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
        spec_path = folder / "openapi.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        generation_seconds = generate(spec_path, folder, package)

        # Whatever the generated package needs must be installed in the dev environment.
        project = tomllib.loads((folder / "client" / "pyproject.toml").read_text("utf-8"))
        for requirement in project["project"]["dependencies"]:
            distribution = requirement.split("<")[0].split(">")[0].split("=")[0].strip()
            top_level = {"python-dateutil": "dateutil"}.get(distribution, distribution)
            assert find_spec(top_level.replace("-", "_")), f"install {distribution} (dev)"

        client_module = module(package, "client")
        models = module(package, "models")
        sign_in = module(package, "api.identity.sign_in")
        list_activity = module(package, "api.wallet.list_activity")
        create_transfer = module(package, "api.wallet.create_transfer")
        get_operation = module(package, "api.wallet.get_operation")
        list_balances = module(package, "api.wallet.list_balances")

        # The document's contract, as the generated code states it: a key is a required
        # string, and a protected operation takes only an authenticated client.
        authenticated, plain = client_module.AuthenticatedClient, client_module.Client
        transfer = inspect.signature(create_transfer.sync_detailed, eval_str=True).parameters
        assert transfer["idempotency_key"].annotation is str
        assert transfer["client"].annotation is authenticated
        token_client = inspect.signature(sign_in.sync, eval_str=True).parameters["client"]
        assert token_client.annotation == authenticated | plain

        anonymous = clients.enter_context(
            client_module.Client(base_url=server.url, raise_on_unexpected_status=True)
        )

        def signed_in(handle: str) -> Any:
            token = sign_in.sync(
                client=anonymous, body=models.TokenCreate(identifier=handle, password=PASSWORD)
            )
            assert isinstance(token, models.TokenRead), token
            assert token.token_type is models.TokenType.BEARER
            return clients.enter_context(
                client_module.AuthenticatedClient(
                    base_url=server.url, token=token.access_token, raise_on_unexpected_status=True
                )
            )

        def balance(client: Any) -> Decimal:
            found = list_balances.sync(client=client)
            assert isinstance(found, list), found
            return sum((value(item.balance) for item in found if item.currency == "CNY"), Decimal())

        wang = signed_in("gen_wang")
        li = signed_in("gen_li")

        activity = list_activity.sync(client=wang, limit=10)
        assert isinstance(activity, models.ActivityRead), activity
        [funded] = activity.items
        assert funded.kind == "top_up" and funded.status is models.OperationStatus.COMPLETED
        assert funded.direction is models.Direction.IN and value(funded.amount) == Decimal("100")

        key = str(uuid.uuid4())
        body = models.TransferCreate(
            to="gen_li", amount=models.AmountIn(value="12.34", currency="CNY"), note="dumplings"
        )
        sent = create_transfer.sync_detailed(client=wang, body=body, idempotency_key=key)
        assert sent.status_code == 201 and isinstance(sent.parsed, models.OperationRead), sent
        assert "idempotent-replayed" not in sent.headers
        replayed = create_transfer.sync_detailed(client=wang, body=body, idempotency_key=key)
        assert replayed.status_code == 201 and replayed.headers["idempotent-replayed"] == "true"
        assert replayed.parsed.reference == sent.parsed.reference

        read = get_operation.sync(client=wang, reference=sent.parsed.reference)
        assert isinstance(read, models.OperationRead), read
        assert read.kind == "send" and read.status is models.OperationStatus.COMPLETED
        assert read.direction is models.Direction.OUT and read.note == "dumplings"
        assert read.counterparty.handle == "gen_li" and value(read.amount) == Decimal("12.34")

        assert balance(wang) == Decimal("87.66")
        assert balance(li) == Decimal("12.34")
        received = list_activity.sync(client=li, direction=models.Direction.IN)
        assert [item.reference for item in received.items] == [sent.parsed.reference]

    paths = spec["paths"].values()
    schemas = spec["components"]["schemas"]
    figures = {
        "test": "generated_client",
        "database": "sqlite" if database.settings.is_sqlite else "postgres",
        "operations": sum(method in HTTP_METHODS for item in paths for method in item),
        "schemas": len(schemas),
        "named_enums": sum("enum" in schema for schema in schemas.values()),
        "generation_seconds": round(generation_seconds, 2),
    }
    line = json.dumps(figures)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"generated_client-{figures['database']}.json").write_text(line + "\n", "utf-8")
    with capsys.disabled():
        print("\n" + line)
