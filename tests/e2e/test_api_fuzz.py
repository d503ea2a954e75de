"""Every operation of the gateway's one OpenAPI document, fuzzed by schemathesis as each kind of
caller, through the gateway to the real services (on PostgreSQL when DATABASE_URL is set): no
answer is a server error, and every answer is a status the document declares, with the content
type and the body schema it declares.

Run by hand against `make run` it found what SQLite could not show: a NUL character (text) or a
NaN (json) that PostgreSQL refuses, a CSV line the reader raised on -- each a 500 -- and dates
read as Unix time. The examples are drawn deterministically (``derandomize``), so a failure here
is the same failure on the next run.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, status_code_conformance
from schemathesis.specs.openapi.checks import response_headers_conformance, response_schema_conformance

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {a["client_id"]: a["client_secret"]
           for a in yaml.safe_load((ROOT / "config" / "demo-accounts.yaml").read_text())["accounts"]}
# One account of each kind of caller that reaches different operations (and scopes).
CALLERS = ("city-admin", "town-worker", "village-worker", "dept-health", "partner-demo", "citizen-demo")
EXAMPLES = 12  # per operation and mode, each sent as every caller
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
# schemathesis writes no application/x-ndjson or text/csv body: the batches have tests of their own
UNSERIALIZABLE = {"POST /api/v1/feeds/batches"}


@pytest.fixture(scope="module")
def api_schema(suite):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_url(f"{suite.gateway}/openapi.json")


@pytest.fixture(scope="module")
def callers(suite) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    headers = {}
    with httpx.Client(base_url=suite.gateway, timeout=30.0) as client:
        for client_id in CALLERS:
            r = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                  "client_secret": SECRETS[client_id]})
            assert r.status_code == 200, r.text
            headers[client_id] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return headers


def fuzz(operation, mode, callers, failures) -> None:  # type: ignore[no-untyped-def]
    """``EXAMPLES`` cases of one operation in one mode, each sent as every caller."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def each(case):  # type: ignore[no-untyped-def]
        for client_id, headers in callers.items():
            key = (operation.label, mode.value, client_id)
            if key in failures:
                continue
            try:
                case.call_and_validate(headers=headers, timeout=30, checks=CHECKS)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - gathered, reported at the end
                failures[key] = f"{type(exc).__name__}: {str(exc)[:600]}"

    try:
        each()
    except Unsatisfiable:  # nothing to draw in this mode (no invalid request exists for it)
        pass


def test_no_operation_answers_a_server_error_or_anything_undeclared(api_schema, callers):  # type: ignore[no-untyped-def]
    """Valid and invalid requests (schemathesis's positive and negative modes) for every operation,
    each sent as every caller. Failures are gathered, one per operation, mode and caller, and all
    reported at the end."""
    failures: dict[tuple[str, str, str], str] = {}
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if operation.label in UNSERIALIZABLE:
            continue
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, callers, failures)
    assert operations >= 120, operations
    assert not failures, "\n\n".join(f"{op} ({mode}) as {who}:\n{text}" for (op, mode, who), text in sorted(failures.items()))
