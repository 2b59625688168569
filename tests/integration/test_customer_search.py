"""Text search over customers on real SQLite and real PostgreSQL: by any part of the name, account
number or id, a page at a time, without an erased person, and with the index checked by verify.

Expected rows come from the customers' own fields (name, account number, id), not from the
search's output.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select

from application import privacy
from domain.base import Context
from interfaces import reports
from interfaces.demo import generate_demo

MANAGER = "mgr-li"
AUDITOR = Context(actor_id="audit-he", actor_role="compliance_auditor")


def as_(actor_id: str = MANAGER, role: str = "customer_manager") -> Context:
    return Context(actor_id=actor_id, actor_role=role)


def register(app: Any, name: str) -> str:
    return str(app.register_customer(as_(), kind="retail", acquisition_channel="branch", source_detail="counter",
                                     segment="mass", manager_id=MANAGER, branch="sz", display_name=name).aggregate_id)


def found(read_models: Any, q: str, **filters: Any) -> set[str]:
    return {row["customer_id"] for row in reports.customers(read_models, q=q, limit=500, **filters)["items"]}


def test_search_finds_customers_by_any_part_of_their_name_or_id(services) -> None:
    application, read_models = services
    chen = register(application, "Chen Xiaoming")
    wang = register(application, "Wang Fang")
    li = register(application, "Li Chenguang")
    percent = register(application, "50% Holdings_Ltd")
    read_models.catch_up()

    assert found(read_models, "chen") == {chen, li}
    assert found(read_models, "  CHEN ") == {chen, li}  # trimmed, any case
    assert found(read_models, "enguan") == {li}
    assert found(read_models, "fang") == {wang}
    assert found(read_models, "an") == {wang, li}  # two characters: no trigram, still found
    assert found(read_models, "0% h") == {percent}  # % and _ are characters, not wildcards
    assert found(read_models, "s_l") == {percent}
    assert found(read_models, "s%l") == set()
    assert found(read_models, wang[9:23]) == {wang}  # a piece of the id
    assert found(read_models, "xiaoming chen") == set()
    assert reports.customers(read_models, q="chen")["total"] == 2


def test_search_pages_walk_every_matching_customer_newest_first(services) -> None:
    application, read_models = services
    generate_demo(application, events=3_000, seed=21)
    read_models.catch_up()
    with read_models.reading() as (conn, t):
        customers = [dict(r) for r in conn.execute(select(t.customers)).mappings()]

    def when(value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    def text(row: dict[str, Any]) -> str:
        return " ".join(v for v in (row["display_name"], row["account_number"], row["customer_id"]) if v).lower()

    newest_first = sorted(customers, key=lambda r: r["customer_id"])
    newest_first.sort(key=lambda r: when(r["registered_at"]), reverse=True)
    accounts = [r["account_number"] for r in customers if r["account_number"]]
    patterns = ["00", "5a", accounts[0][-6:-2], accounts[-1][:5], customers[3]["customer_id"][:8]]
    for pattern in patterns:
        for filters in ({}, {"stage": "account_opened"}, {"kind": "retail"}):
            expected = [r["customer_id"] for r in newest_first if pattern in text(r)
                        and all(r[k] == v for k, v in filters.items())]
            rows, totals, cursor = [], set(), None
            while True:
                page = reports.customers(read_models, q=pattern, limit=6, cursor=cursor, **filters)
                rows += [r["customer_id"] for r in page["items"]]
                totals.add(page["total"])
                if (cursor := page["next"]) is None:
                    break
            assert rows == expected, (pattern, filters)
            assert totals == {len(expected)}, (pattern, filters)
    assert any(sum(p in text(r) for r in customers) > 12 for p in patterns)  # several pages for one pattern


PROBE = "Qxzjvw Erasure-Probe"


def test_an_erased_persons_name_is_not_found_and_leaves_the_search_index(services, settings) -> None:
    application, read_models = services
    customer_id = register(application, PROBE)
    other = register(application, "Qxzjvw Neighbour")
    read_models.catch_up()
    read_models.runner.rebuild()  # the live index built from the filled rows; later changes by its triggers
    assert found(read_models, "erasure-pro") == {customer_id}
    assert found(read_models, "qxzjvw") == {customer_id, other}
    before = _index_storage(read_models)

    privacy.erase_personal_data(application, AUDITOR, UUID(customer_id), reason="data subject request DSR-9",
                                retention_years=10)
    read_models.catch_up()

    assert found(read_models, "erasure-pro") == set()
    assert found(read_models, "qxzjvw") == {other}
    assert found(read_models, customer_id[:13]) == {customer_id}  # the id is not personal data
    if not settings.uses_postgres:  # PostgreSQL keeps dead index entries until VACUUM (see the README)
        probes = [PROBE.lower()[i:i + 3].encode() for i in range(6, len(PROBE) - 2)]  # "erasure-probe"
        assert any(p in before for p in probes)
        after = _index_storage(read_models)
        assert [p for p in probes if p in after] == []
    assert read_models.runner.verify() == []


def test_verify_compares_the_search_index_with_a_rebuilt_one(services, settings) -> None:
    application, read_models = services
    for name in ("Chen Xiaoming", "Wang Fang", "Li Chenguang"):
        register(application, name)
    read_models.catch_up()
    assert read_models.runner.verify() == []
    if settings.uses_postgres:
        return  # PostgreSQL's trigram index belongs to the table, like any index
    live = read_models.store.checksum("pipeline")
    assert "customers_search" in live

    t = read_models.store.tables("pipeline")
    name = read_models.store.text.name(t.customers)
    with read_models.engine.begin() as conn:
        row = conn.execute(select(t.customers.c.search_key, t.customers.c.search_text)).first()
        conn.exec_driver_sql(f"INSERT INTO \"{name}\"(\"{name}\", rowid, search_text) VALUES ('delete', ?, ?)",
                             tuple(row))

    assert [m["table"] for m in read_models.runner.verify()] == ["customers_search"]


def _index_storage(read_models: Any) -> bytes:
    """Every block of the FTS5 index of the live customers table (SQLite)."""
    if read_models.engine.dialect.name != "sqlite":
        return b""
    with read_models.reading() as (conn, t):
        name = read_models.store.text.name(t.customers)
        return b"".join(bytes(block) for (block,) in conn.exec_driver_sql(f'SELECT block FROM "{name}_data"')
                        if block)
