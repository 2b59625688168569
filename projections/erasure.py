"""After a person's data were erased: what the read models must forget too.

The live projections apply the erasure event themselves (the pipeline drops the
name and risk-case texts, the actor trail the encrypted reasons). What they
cannot reach is dropped or flushed here: superseded table generations kept
since the last rebuild, and - over SQLite - the write-ahead log, whose frames
still hold the pages as they were. The read models' SQLite connections run with
``PRAGMA secure_delete=ON``, so freed rows and pages are overwritten with zeros.
Over PostgreSQL the old row versions stay until VACUUM (see the README).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID


def related_ids(read_models: Any, customer_id: UUID) -> list[UUID]:
    """The customer's visits, proposals, contracts and risk cases (from the pipeline read model)."""
    from projections import queries

    found = []
    with read_models.reading("pipeline") as (conn, tables):
        for kind in ("visit", "proposal", "contract", "risk_case"):
            offset = 0
            while True:
                rows = queries.records(conn, tables, kind, customer_id=str(customer_id), limit=1000, offset=offset)
                found += [UUID(r["aggregate_id"]) for r in rows]
                if len(rows) < 1000:
                    break
                offset += 1000
    return found


def forget_in_read_models(read_models: Any) -> dict[str, Any]:
    """Catch the read models up (they apply the erasure), drop superseded generations, flush the WAL."""
    positions = read_models.catch_up()
    dropped = 0
    store = read_models.store
    for name in store.projections:
        active = store.active_generation(name)
        for generation in store.generations(name):
            if generation != active:
                store.drop_generation(name, generation)
                dropped += 1
    if read_models.engine.dialect.name == "sqlite":
        with read_models.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return {"positions": positions, "dropped": dropped}
