"""Reports as of a past moment: recorded time (what tuohu knew) and business time."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from domain.base import Context
from interfaces import reports


def _register(application, occurred_at: datetime) -> None:
    application.register_customer(
        Context("mgr-he", "customer_manager", occurred_at=occurred_at), kind="retail",
        acquisition_channel="referral", source_detail="existing customer", segment="mass", manager_id="mgr-he",
        branch="SH-02")


def test_as_of_a_recorded_time_shows_what_was_known_then(services) -> None:
    application, read_models = services
    july, august = datetime(2009, 7, 10, tzinfo=timezone.utc), datetime(2009, 8, 20, tzinfo=timezone.utc)
    _register(application, july)
    time.sleep(0.01)
    known_then = datetime.now(timezone.utc)
    time.sleep(0.01)
    _register(application, august)  # recorded later, though in the same quarter
    read_models.catch_up()
    generations = {name: read_models.store.generations(name) for name in read_models.store.projections}
    checksums = {name: read_models.store.checksum(name) for name in read_models.store.projections}

    then = reports.evaluation(read_models, "2009-Q3", as_of=known_then)
    now = reports.evaluation(read_models, "2009-Q3")

    assert then["indicators"]["new_retail_customers"]["actual"] == 1
    assert now["indicators"]["new_retail_customers"]["actual"] == 2
    # the live tables are untouched and the scratch ones are gone
    assert {name: read_models.store.generations(name) for name in read_models.store.projections} == generations
    assert {name: read_models.store.checksum(name) for name in read_models.store.projections} == checksums


def test_effective_as_of_cuts_on_business_time(services) -> None:
    application, read_models = services
    _register(application, datetime(2009, 7, 10, tzinfo=timezone.utc))
    _register(application, datetime(2009, 9, 5, tzinfo=timezone.utc))
    read_models.catch_up()

    report = reports.evaluation(read_models, "2009-Q3", effective_as_of=datetime(2009, 8, 1, tzinfo=timezone.utc))

    assert report["indicators"]["new_retail_customers"]["actual"] == 1
