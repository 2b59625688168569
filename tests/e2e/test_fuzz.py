"""Schemathesis against the app's own OpenAPI document: whatever a client sends, never a 5xx.

Every operation gets a bounded number of generated requests (valid and invalid
ones, derandomized so CI runs the same cases), sent in-process to one running
app as a user whose role the matrix admits for that operation. Ids in paths and
bodies mostly name real aggregates, so generated bodies reach the domain rules;
one request in eight keeps the generated ``Authorization`` header.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from api_users import BRANCH, OTHER_BRANCH, add_staff, as_, bearer, customer_world
from application import Settings
from interfaces.api import create_app
from interfaces.api.permissions import PERMISSIONS

EXAMPLES = int(os.environ.get("TUOHU_FUZZ_EXAMPLES", "20"))
"""Generated requests per operation (schemathesis adds the schema's own examples)."""

OPENAPI = create_app(Settings(data_dir=Path("/nonexistent"), database_url=None)).openapi()
SCHEMA = schemathesis.openapi.from_dict(OPENAPI)
SCHEMA.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])

PREFERRED = ("compliance_auditor", "product_manager", "operations", "reviewer", "risk_officer", "branch_head",
             "customer_manager", "admin")
CALLER_OF_ROLE = {"customer_manager": "mgr-li", "product_manager": "pm-zhao", "operations": "ops-liu",
                  "reviewer": "rev-wang", "risk_officer": "risk-zhou", "compliance_auditor": "audit-he",
                  "branch_head": "head-sun", "admin": "admin-root"}


def caller(operation_id: str) -> str | None:
    """A user the matrix admits for the operation (bank-wide roles first); None for public routes."""
    rule = PERMISSIONS[operation_id]
    if rule.public:
        return None
    return CALLER_OF_ROLE[next(role for role in PREFERRED if role in rule.roles)]


@pytest.fixture(scope="module")
def fuzz_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    settings_ = Settings(data_dir=tmp_path_factory.mktemp("fuzz"), database_url=None, consistency_timeout=0.5)
    with TestClient(create_app(settings_)) as client:
        add_staff(client)
        application = client.app.state.application
        world = customer_world(application, "mgr-li", BRANCH)
        customer_world(application, "mgr-zhou", OTHER_BRANCH)
        head = as_("head-sun")
        application.join_team(head, staff_code="mgr-li", display_name="Li Na", role="customer_manager", branch=BRANCH)
        world["scheme_id"] = application.define_appraisal_scheme(head, year="2025", indicators=[
            {"indicator": "new_customers", "group": "acquisition_results", "weight": Decimal(100)}]).aggregate_id
        world["target_id"] = application.set_target(head, year="2025", unit_type="branch", unit_id=BRANCH,
                                                    indicator="new_customers", annual=Decimal(12)).aggregate_id
        yield {"client": client, "world": world}


def _real_ids(case: Any, world: dict[str, Any], keep: bool) -> None:
    """Point the case's ids at real aggregates (unless ``keep``), so bodies reach the rules."""
    if keep:
        return
    for name, value in (case.path_parameters or {}).items():
        if name in world:
            case.path_parameters[name] = str(world[name])
        elif name == "staff_code":
            case.path_parameters[name] = "mgr-li"
        elif name == "name" and isinstance(value, str):
            case.path_parameters[name] = "ops-liu"
    if isinstance(case.body, dict):
        for field, key in (("customer_id", "customer_id"), ("subject_id", "customer_id"),
                           ("proposal_id", "accepted_proposal_id")):
            if field in case.body:
                case.body[field] = str(world[key])


@SCHEMA.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck),
          database=None)
def test_no_request_makes_the_api_answer_5xx(case: Any, fuzz_api: dict[str, Any]) -> None:
    client = fuzz_api["client"]
    digest = int(hashlib.sha256(repr((case.method, case.path, case.path_parameters, case.query, case.headers,
                                      case.body)).encode()).hexdigest(), 16)
    _real_ids(case, fuzz_api["world"], keep=digest % 4 == 0)
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    # HTTP header values are bytes; non-ASCII text goes over the wire as Latin-1 (obs-text) or not at all
    headers = {k: v.encode("latin-1", "replace") if isinstance(v, str) else v
               for k, v in (kwargs.get("headers") or {}).items()}
    name = caller(case.operation.definition.raw["operationId"])
    if name is not None and digest % 8 != 1:
        headers.update(bearer(client, name))
    content = kwargs.get("data")
    response = client.request(kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=headers,
                              content=content if content is not None else None,
                              json=kwargs.get("json") if content is None else None)

    assert response.status_code < 500, (f"{kwargs['method']} {kwargs['url']} params={kwargs.get('params')} "
                                        f"headers={headers} body={kwargs.get('json', content)!r}\n"
                                        f"-> {response.status_code} {response.text[:500]}")
