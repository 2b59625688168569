"""Conflicting commands over real HTTP: uvicorn on loopback, many client threads, SQLite and PostgreSQL.

- 50 writers with ``If-Match`` retrying until they win: exactly one success per
  version, every write kept (no lost update), one event per success;
- 50 writers without ``If-Match``: each either wins or answers 409, never a lost
  update, never a duplicate event;
- 100 retries of one command with one ``Idempotency-Key``: exactly one effect.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import httpx
import pytest
import uvicorn

from api_users import BRANCH, OPERATOR
from application import Settings
from domain.customer import Customer
from interfaces.api import create_app

WRITERS = 50
RETRIES = 100


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(settings: Settings) -> Iterator[dict[str, Any]]:
    """The API served by uvicorn on 127.0.0.1 in a thread, with a customer manager and their customer."""
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning", lifespan="on",
                            limit_concurrency=500, backlog=512)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    application = app.state.application
    token = application.add_user(OPERATOR, name="mgr-li", role="customer_manager", branch=BRANCH).token
    customer_id = application.register_customer(
        OPERATOR, kind="retail", acquisition_channel="online", source_detail="web form", segment="mass",
        manager_id="mgr-li", branch=BRANCH).aggregate_id
    try:
        yield {"url": f"http://127.0.0.1:{config.port}", "app": application, "customer_id": customer_id,
               "headers": {"Authorization": f"Bearer {token}"}}
    finally:
        uv.should_exit = True
        thread.join(30)


def _facts_events(application: Any, customer_id: UUID) -> list[Any]:
    return [e for e in application.events.get(customer_id) if isinstance(e, Customer.FactsRecorded)]


def test_fifty_writers_with_if_match_get_exactly_one_success_per_version(server: dict[str, Any]) -> None:
    url, customer_id, headers = server["url"], server["customer_id"], server["headers"]
    start = server["app"].load(Customer, customer_id).version
    barrier = threading.Barrier(WRITERS)
    seen_statuses: set[int] = set()

    def writer(i: int) -> int:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            barrier.wait()
            for _ in range(20 * WRITERS):
                etag = client.get(f"/customers/{customer_id}").headers["ETag"]
                response = client.post(f"/customers/{customer_id}/facts", headers={"If-Match": etag},
                                       json={"group": "needs", "facts": {f"writer_{i}": i}})
                seen_statuses.add(response.status_code)
                if response.status_code == 200:
                    assert response.headers["ETag"] == f'"{response.json()["version"]}"'
                    return response.json()["version"]
                assert response.status_code in (409, 412), response.text
            raise AssertionError(f"writer {i} never won")

    with ThreadPoolExecutor(WRITERS) as pool:
        versions = list(pool.map(writer, range(WRITERS)))

    assert sorted(versions) == list(range(start + 1, start + WRITERS + 1))  # one success per version
    customer = server["app"].load(Customer, customer_id)
    assert customer.version == start + WRITERS
    assert customer.facts["needs"] == {f"writer_{i}": i for i in range(WRITERS)}  # no lost update
    events = _facts_events(server["app"], customer_id)
    assert [e.originator_version for e in events] == list(range(start + 1, start + WRITERS + 1))  # no duplicate
    assert seen_statuses <= {200, 409, 412}


def test_fifty_writers_without_if_match_either_win_or_get_409(server: dict[str, Any]) -> None:
    url, customer_id, headers = server["url"], server["customer_id"], server["headers"]
    start = server["app"].load(Customer, customer_id).version
    barrier = threading.Barrier(WRITERS)

    def writer(i: int) -> httpx.Response:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            client.get("/health")  # connected before the barrier, so the posts really overlap
            barrier.wait()
            return client.post(f"/customers/{customer_id}/facts", json={"group": "needs", "facts": {f"w{i}": i}})

    with ThreadPoolExecutor(WRITERS) as pool:
        responses = list(pool.map(writer, range(WRITERS)))

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 409}, [r.text for r in responses if r.status_code not in (200, 409)]
    assert all(r.json()["code"] == "concurrent_update" for r in responses if r.status_code == 409)
    winners = {i for i, r in enumerate(responses) if r.status_code == 200}
    versions = sorted(responses[i].json()["version"] for i in winners)
    assert versions == list(range(start + 1, start + len(winners) + 1))  # each win its own version
    customer = server["app"].load(Customer, customer_id)
    assert customer.facts["needs"] == {f"w{i}": i for i in winners}  # every win kept, no refused write applied
    assert len(_facts_events(server["app"], customer_id)) == len(winners)


@pytest.mark.parametrize("command", ["register_customer", "record_facts"])
def test_a_hundred_retries_with_one_idempotency_key_have_exactly_one_effect(server: dict[str, Any],
                                                                           command: str) -> None:
    url, customer_id, headers = server["url"], server["customer_id"], server["headers"]
    application = server["app"]
    if command == "register_customer":
        path, body, status = "/customers", {"kind": "retail", "acquisition_channel": "online", "source_detail": "app",
                                            "segment": "mass", "manager_id": "mgr-li", "branch": BRANCH}, 201
    else:
        path, body, status = f"/customers/{customer_id}/facts", {"group": "needs", "facts": {"payroll": True}}, 200
    before = application.position()
    barrier = threading.Barrier(20)

    def retry(batch: int) -> list[httpx.Response]:
        with httpx.Client(base_url=url, headers={**headers, "Idempotency-Key": "form-8812"}, timeout=60) as client:
            barrier.wait()
            return [client.post(path, json=body) for _ in range(RETRIES // 20)]

    with ThreadPoolExecutor(20) as pool:
        responses = [r for batch in pool.map(retry, range(20)) for r in batch]

    assert len(responses) == RETRIES
    assert {r.status_code for r in responses} == {status}, {r.text for r in responses}
    assert len({(r.json()["aggregate_id"], r.json()["version"]) for r in responses}) == 1  # all the first answer
    assert sum(not r.json()["replayed"] for r in responses) == 1
    written = application.recorder.select_notifications(before + 1, limit=1000)
    assert len(written) == 2  # the command's one event and its receipt
    assert {n.topic.split(".")[0] for n in written} == {"tuohu:Customer", "tuohu:CommandReceipt"}
