"""The HTTP API against its own OpenAPI description, with schemathesis: generated requests
to every operation never get a server error, and every answer is one the description
declares (status, content type, body schema). Run with an admin key, on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import checks

from posledger import open_ledger
from posledger.entrypoints.http.app import Settings, create_app

from .helpers import fill, setup

SCHEMA = schemathesis.openapi.from_dict(
    create_app(Settings(db="memory://schema")).openapi()
).exclude(path="/v1/stream")
"""Every operation but the live stream, which answers a good request with a response that
never ends (its own tests: tests/integration/test_http_stream.py)."""
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('schema')) / 'ledger.db'}"
    with open_ledger(url) as ledger:
        setup(ledger)
        assert fill(ledger, "f1", "BUY", "2", "100", strategy="alpha", minute=1).applied
        _, admin = ledger.create_key(admin=True)
    with TestClient(create_app(Settings(db=url, rate=1e6))) as client:
        yield client, admin


@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_to_its_description(
    served: tuple[TestClient, str], case: schemathesis.Case
) -> None:
    client, admin = served
    sent = case.as_transport_kwargs(headers={"Authorization": f"Bearer {admin}"})
    sent.pop("base_url", None)
    if not sent.get("cookies"):
        sent.pop("cookies", None)
    answer = client.request(**sent)
    case.validate_response(answer, checks=CHECKS)


def test_the_description_is_served_and_no_page_loads_scripts_from_elsewhere(
    served: tuple[TestClient, str],
) -> None:
    client, _ = served
    described = client.get("/openapi.json").json()
    assert described["info"]["title"] == "posledger" and "/v1/ingest" in described["paths"]
    # FastAPI's /docs and /redoc load their scripts from a CDN: not served.
    for path in ("/docs", "/redoc"):
        assert client.get(path).status_code == 404
    page = client.get("/").text
    assert "<script" in page and "http://" not in page and "https://" not in page
