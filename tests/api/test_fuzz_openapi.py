"""Fuzzing with schemathesis against ``/api/v1/openapi.json`` through the Flask app (no network).

Every documented operation gets generated requests, valid and invalid, sent with an admin token (so
that they reach the handlers, not just auth). Checks: no 5xx, status codes, content types and bodies
conforming to the documented responses. Bounded (``MAX_EXAMPLES`` per operation, no example database)
so that the whole run takes about a minute; raise ``NOFEI_FUZZ_EXAMPLES`` for a deeper night run.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import unit_payload

MAX_EXAMPLES = int(os.environ.get("NOFEI_FUZZ_EXAMPLES", "20"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    """One app for the whole module on its own SQLite file, with a few units and an admin token."""
    from api import create_app
    from ledgers import registry
    from nofei.access import SYSTEM
    from nofei.storage.uow import UnitOfWork

    db = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    app = create_app({"DATABASE_URL": f"sqlite:///{db}", "LOG_LEVEL": "CRITICAL", "TESTING": True})
    with UnitOfWork(app.extensions["nofei.sessions"]) as uow:
        for d in ("630104", "630102"):
            registry.register_unit(uow=uow, actor=SYSTEM, data=unit_payload(d, roles=["producer", "disposer"]))
        t = registry.create_token(uow=uow, actor=SYSTEM, role="admin", name="fuzz")
    app.config["FUZZ_HEADERS"] = {"Authorization": f"Bearer {t.token}"}
    yield app
    app.extensions["nofei.engine"].dispose()


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)


@pytest.fixture(autouse=True)
def _nodeid_for_schemathesis(request):
    """schemathesis 4.3's lazy loader renames the test node through ``node._nodeid``, which pytest 9 no
    longer has; give it one."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


# Operations that break their documented schema today, reported to their owners. They stay out of the
# conformance test below; the second test still sends them generated requests and insists on no 5xx.
NONCONFORMING = {
    "GET /api/v1/reports/annual": "format=html answers text/html; only JSON and XLSX are documented",
}

schema = schemathesis.pytest.from_fixture("api_schema")
FUZZ = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                phases=[Phase.generate],  # no explicit/coverage phase: it multiplies the cases ~10x
                suppress_health_check=list(HealthCheck))


@schema.exclude(name=list(NONCONFORMING)).parametrize()
@FUZZ
def test_api_conforms_to_its_openapi(case, fuzz_app):
    case.call_and_validate(headers=fuzz_app.config["FUZZ_HEADERS"], checks=CHECKS)


@schema.include(name=sorted(NONCONFORMING)).parametrize()
@FUZZ
def test_known_nonconforming_operations_still_never_answer_5xx(case, fuzz_app):
    case.call_and_validate(headers=fuzz_app.config["FUZZ_HEADERS"], checks=[not_a_server_error])


STATEFUL_EXAMPLES = int(os.environ.get("NOFEI_FUZZ_STATEFUL_EXAMPLES", "15"))


def test_stateful_sequences_through_the_links_never_answer_5xx(api_schema, fuzz_app):
    """schemathesis' stateful phase: sequences that follow the OpenAPI links (a created unit → get/patch it,
    a created manifest → ship/receive/reject/correct it, a token → revoke it, a ledger → read it and its
    file) with generated data; every answer must be below 500. Bounded: ``STATEFUL_EXAMPLES`` sequences
    of at most 6 steps."""
    headers = fuzz_app.config["FUZZ_HEADERS"]
    calls: list[tuple[str, int]] = []

    class Workflow(api_schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case):
            return {"headers": headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            calls.append((case.operation.label, response.status_code))
            assert response.status_code < 500, (case.operation.label, response.status_code, response.text[:300])

    Workflow.run(settings=settings(max_examples=STATEFUL_EXAMPLES, stateful_step_count=6, deadline=None,
                                   database=None, derandomize=True, suppress_health_check=list(HealthCheck)))
    assert calls and all(status < 500 for _, status in calls)
    linked = {"GET /api/v1/units/{credit_code}", "PATCH /api/v1/units/{credit_code}", "DELETE /api/v1/tokens/{token_id}",
              "GET /api/v1/manifests/{number}", "POST /api/v1/manifests/{number}/ship"}
    assert linked & {op for op, _ in calls}, sorted({op for op, _ in calls})
