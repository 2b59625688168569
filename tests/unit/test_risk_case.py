"""RiskCase: identify, assess, respond, monitor with early warnings, dispose, close (measures §4).

Levels follow the documented rule (indicator scores 0-100, higher is riskier):
high when any score >= 80 or the mean >= 60; medium when any score >= 50 or
the mean >= 30; low otherwise.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from domain.base import IllegalTransition, InvalidValue, ReasonRequired
from domain.risk import ResponseNotAllowed, RiskCase

OFFICER = "risk-sun"


def readings(case, ctx, *values, threshold="100", direction="above", indicator="overdue_days"):
    """Record ``values`` in turn; return the events they caused, oldest first."""
    case.collect_events()
    for value in values:
        case.record_reading(ctx(OFFICER, "risk_officer"), indicator=indicator, value=Decimal(value),
                            threshold=Decimal(threshold), direction=direction)
    return case.collect_events()


def warnings_in(events):
    return [e for e in events if isinstance(e, RiskCase.WarningRaised)]


# ------------------------------------------------------------------ identify


def test_identifying_a_risk_about_a_customer_opens_a_case(ctx):
    customer_id = uuid.uuid4()
    case = RiskCase.identify(ctx(OFFICER, "risk_officer"), subject_type="customer", subject_id=customer_id,
                             customer_id=customer_id, category="reputational", description="negative press")
    [event] = case.collect_events()
    assert isinstance(event, RiskCase.Identified)
    assert (event.subject_type, event.subject_id, event.customer_id, event.category, event.description) == (
        "customer", customer_id, customer_id, "reputational", "negative press")
    assert case.status == "identified"
    assert case.level is None and case.response is None


def test_a_risk_about_a_contract_names_the_contracts_customer(ctx):
    contract_id, customer_id = uuid.uuid4(), uuid.uuid4()
    case = RiskCase.identify(ctx(OFFICER, "risk_officer"), subject_type="contract", subject_id=contract_id,
                             customer_id=customer_id, category="operational", description="clause 4 unenforceable")
    assert (case.subject_type, case.subject_id, case.customer_id) == ("contract", contract_id, customer_id)


@pytest.mark.parametrize(
    ("field", "value"), [("subject_type", "visit"), ("category", "weather"), ("description", " ")],
)
def test_identifying_refuses_a_bad_field_and_names_it(ctx, field, value):
    fields = dict(subject_type="customer", subject_id=uuid.uuid4(), customer_id=uuid.uuid4(), category="credit",
                  description="overdue")
    fields[field] = value
    with pytest.raises(InvalidValue) as refused:
        RiskCase.identify(ctx(OFFICER, "risk_officer"), **fields)
    assert refused.value.field == field


# ------------------------------------------------------------------ assess (the level rule)


@pytest.mark.parametrize(
    ("scores", "level"),
    [
        ({"a": 80}, "high"),                     # one score at 80
        ({"a": 80, "b": 0, "c": 0}, "high"),     # one score at 80 though the mean is low (26.7)
        ({"a": 60, "b": 60}, "high"),            # mean exactly 60, no score at 80
        ({"a": 79, "b": 40}, "medium"),          # mean 59.5, top 79
        ({"a": 79}, "high"),                     # no score at 80, but the mean is 79
        ({"a": 79, "b": 0}, "medium"),           # top 79 is below 80 but at least 50; mean 39.5
        ({"a": 50, "b": 0, "c": 0}, "medium"),   # one score at 50, mean 16.7
        ({"a": 30}, "medium"),                   # mean exactly 30
        ({"a": 49, "b": 11}, "medium"),          # mean exactly 30, top 49
        ({"a": 49, "b": 10}, "low"),             # mean 29.5, top 49
        ({"a": 29}, "low"),                      # mean 29
        ({"a": 0, "b": 0}, "low"),
    ],
)
def test_the_level_follows_the_documented_rule(given, ctx, scores, level):
    case = given.identified_risk()
    case.assess(ctx(OFFICER, "risk_officer"), indicator_scores=scores)
    [event] = case.collect_events()
    assert isinstance(event, RiskCase.Assessed)
    assert (event.indicator_scores, event.level) == (scores, level)
    assert (case.status, case.level) == ("assessed", level)


@pytest.mark.parametrize("bad", [101, -1, 50.5, True, "80"])
def test_an_indicator_score_must_be_a_whole_number_from_0_to_100(given, ctx, bad):
    case = given.identified_risk()
    with pytest.raises(InvalidValue) as refused:
        case.assess(ctx(OFFICER, "risk_officer"), indicator_scores={"ok": 10, "market_share_loss": bad})
    assert refused.value.field == "indicator_scores.market_share_loss"


def test_an_assessment_needs_an_indicator(given, ctx):
    case = given.identified_risk()
    with pytest.raises(InvalidValue) as refused:
        case.assess(ctx(OFFICER, "risk_officer"), indicator_scores={})
    assert refused.value.field == "indicator_scores"


def test_a_case_under_response_may_be_reassessed_and_goes_back_to_assessed(given, ctx):
    case = given.risk_with_response("reduce")
    case.assess(ctx(OFFICER, "risk_officer"), indicator_scores={"overdue": 20}, reason="overdue repaid")
    [event] = case.collect_events()
    assert event.reason == "overdue repaid"
    assert (case.status, case.level) == ("assessed", "low")


@pytest.mark.parametrize("state", ["disposed", "closed"])
def test_a_disposed_or_closed_case_cannot_be_reassessed(given, ctx, state):
    case = given.disposed_risk() if state == "disposed" else given.closed_risk()
    with pytest.raises(IllegalTransition):
        case.assess(ctx(OFFICER, "risk_officer"), indicator_scores={"overdue": 90})


# ------------------------------------------------------------------ respond


def test_a_high_risk_is_avoided_with_measures_and_a_reason(given, ctx):
    case = given.assessed_risk({"overdue": 85})
    case.decide_response(ctx(OFFICER, "risk_officer"), response="avoid", measures=["no new business"],
                         reason="default risk too high")
    [event] = case.collect_events()
    assert isinstance(event, RiskCase.ResponseDecided)
    assert (event.response, event.measures, event.reason) == ("avoid", ["no new business"], "default risk too high")
    assert (case.status, case.response) == ("responding", "avoid")


def test_a_low_risk_may_be_accepted(given, ctx):
    case = given.assessed_risk({"overdue": 10})
    case.decide_response(ctx(OFFICER, "risk_officer"), response="accept", measures=["quarterly monitoring"],
                         reason="minor")
    assert case.response == "accept"


@pytest.mark.parametrize("scores", [{"overdue": 50}, {"overdue": 80}], ids=["medium", "high"])
def test_only_a_low_risk_may_be_accepted(given, ctx, scores):
    case = given.assessed_risk(scores)
    with pytest.raises(ResponseNotAllowed):
        case.decide_response(ctx(OFFICER, "risk_officer"), response="accept", measures=["watch"], reason="fine")
    assert case.collect_events() == []
    assert case.response is None


@pytest.mark.parametrize("response", ["reduce", "transfer"])
def test_a_medium_risk_may_be_reduced_or_transferred(given, ctx, response):
    case = given.assessed_risk({"overdue": 55})
    case.decide_response(ctx(OFFICER, "risk_officer"), response=response, measures=["stricter review"],
                         reason="policy")
    assert case.response == response


def test_a_response_is_one_of_avoid_reduce_transfer_accept(given, ctx):
    case = given.assessed_risk({"overdue": 55})
    with pytest.raises(InvalidValue) as refused:
        case.decide_response(ctx(OFFICER, "risk_officer"), response="ignore", measures=["none"], reason="x")
    assert refused.value.field == "response"


def test_a_response_needs_a_measure(given, ctx):
    case = given.assessed_risk({"overdue": 55})
    with pytest.raises(InvalidValue) as refused:
        case.decide_response(ctx(OFFICER, "risk_officer"), response="reduce", measures=[], reason="x")
    assert refused.value.field == "measures"


def test_a_response_needs_a_reason(given, ctx):
    case = given.assessed_risk({"overdue": 55})
    with pytest.raises(ReasonRequired):
        case.decide_response(ctx(OFFICER, "risk_officer"), response="reduce", measures=["training"], reason=None)


def test_an_unassessed_case_cannot_be_given_a_response(given, ctx):
    case = given.identified_risk()
    with pytest.raises(IllegalTransition) as refused:
        case.decide_response(ctx(OFFICER, "risk_officer"), response="avoid", measures=["stop"], reason="x")
    assert refused.value.state == "identified"


# ------------------------------------------------------------------ monitor: warnings only on a crossing


def test_a_reading_within_its_threshold_raises_no_warning(given, ctx):
    case = given.risk_with_response("reduce")
    events = readings(case, ctx, "99")
    assert [type(e) for e in events] == [RiskCase.ReadingRecorded]
    assert case.warnings == 0


def test_a_reading_exactly_at_its_threshold_is_not_beyond_it(given, ctx):
    case = given.risk_with_response("reduce")
    assert warnings_in(readings(case, ctx, "100")) == []


def test_crossing_above_a_threshold_raises_a_warning(given, ctx):
    case = given.risk_with_response("reduce")
    events = readings(case, ctx, "90", "101")
    assert [type(e) for e in events] == [RiskCase.ReadingRecorded, RiskCase.ReadingRecorded, RiskCase.WarningRaised]
    warning = events[-1]
    assert (warning.indicator, warning.value, warning.threshold, warning.direction) == (
        "overdue_days", Decimal("101"), Decimal("100"), "above")
    assert case.warnings == 1


def test_a_first_reading_already_beyond_its_threshold_raises_a_warning(given, ctx):
    case = given.risk_with_response("reduce")
    assert len(warnings_in(readings(case, ctx, "150"))) == 1


def test_a_repeat_reading_beyond_the_threshold_raises_no_second_warning(given, ctx):
    case = given.risk_with_response("reduce")
    readings(case, ctx, "101")
    events = readings(case, ctx, "130", "180")
    assert [type(e) for e in events] == [RiskCase.ReadingRecorded, RiskCase.ReadingRecorded]
    assert case.warnings == 1


def test_falling_back_and_crossing_again_raises_a_new_warning(given, ctx):
    case = given.risk_with_response("reduce")
    events = readings(case, ctx, "101", "80", "120")
    assert [w.value for w in warnings_in(events)] == [Decimal("101"), Decimal("120")]
    assert case.warnings == 2


def test_crossing_below_a_threshold_raises_a_warning(given, ctx):
    case = given.risk_with_response("reduce")
    events = readings(case, ctx, "1.50", "1.19", indicator="liquidity_ratio", threshold="1.20", direction="below")
    [warning] = warnings_in(events)
    assert (warning.indicator, warning.value, warning.direction) == ("liquidity_ratio", Decimal("1.19"), "below")


def test_a_repeat_reading_below_the_threshold_raises_no_second_warning(given, ctx):
    case = given.risk_with_response("reduce")
    readings(case, ctx, "1.10", indicator="liquidity_ratio", threshold="1.20", direction="below")
    events = readings(case, ctx, "1.00", "0.90", indicator="liquidity_ratio", threshold="1.20", direction="below")
    assert warnings_in(events) == []
    assert case.warnings == 1


def test_a_reading_above_a_below_threshold_raises_no_warning(given, ctx):
    case = given.risk_with_response("reduce")
    events = readings(case, ctx, "2.00", indicator="liquidity_ratio", threshold="1.20", direction="below")
    assert warnings_in(events) == []


def test_each_indicator_crosses_on_its_own(given, ctx):
    case = given.risk_with_response("reduce")
    readings(case, ctx, "101", indicator="overdue_days")
    events = readings(case, ctx, "101", indicator="complaints")
    assert [w.indicator for w in warnings_in(events)] == ["complaints"]


@pytest.mark.parametrize(
    ("field", "overrides"),
    [("value", {"value": 101}), ("value", {"value": Decimal("Infinity")}), ("threshold", {"threshold": 100.0}),
     ("threshold", {"threshold": Decimal("NaN")}), ("direction", {"direction": "sideways"}),
     ("indicator", {"indicator": " "})],
)
def test_a_reading_refuses_a_bad_field_and_names_it(given, ctx, field, overrides):
    case = given.risk_with_response("reduce")
    reading = dict(indicator="overdue_days", value=Decimal("1"), threshold=Decimal("100"), direction="above")
    reading.update(overrides)
    with pytest.raises(InvalidValue) as refused:
        case.record_reading(ctx(OFFICER, "risk_officer"), **reading)
    assert refused.value.field == field
    assert case.collect_events() == []


def test_readings_need_a_decided_response(given, ctx):
    case = given.assessed_risk({"overdue": 90})
    with pytest.raises(IllegalTransition):
        case.record_reading(ctx(OFFICER, "risk_officer"), indicator="overdue_days", value=Decimal("1"),
                            threshold=Decimal("100"), direction="above")


# ------------------------------------------------------------------ dispose and close


def test_a_case_under_response_is_disposed_with_actions_and_findings(given, ctx):
    case = given.risk_with_response("avoid")
    case.dispose(ctx(OFFICER, "risk_officer"), actions=["called the customer", "checked the bureau"],
                 findings="overdue was a bank error")
    [event] = case.collect_events()
    assert isinstance(event, RiskCase.Disposed)
    assert (event.actions, event.findings) == (["called the customer", "checked the bureau"],
                                               "overdue was a bank error")
    assert case.status == "disposed"


def test_an_assessed_case_may_be_disposed_without_a_response(given, ctx):
    case = given.assessed_risk({"overdue": 10})
    case.dispose(ctx(OFFICER, "risk_officer"), actions=["checked"], findings="false alarm")
    assert case.status == "disposed"


def test_an_unassessed_case_cannot_be_disposed(given, ctx):
    case = given.identified_risk()
    with pytest.raises(IllegalTransition):
        case.dispose(ctx(OFFICER, "risk_officer"), actions=["checked"], findings="nothing")


@pytest.mark.parametrize(("field", "overrides"), [("actions", {"actions": []}), ("findings", {"findings": ""})])
def test_a_disposal_needs_actions_and_findings(given, ctx, field, overrides):
    case = given.risk_with_response("reduce")
    disposal = dict(actions=["checked"], findings="fine")
    disposal.update(overrides)
    with pytest.raises(InvalidValue) as refused:
        case.dispose(ctx(OFFICER, "risk_officer"), **disposal)
    assert refused.value.field == field


def test_a_disposed_case_is_closed_with_the_reason(given, ctx):
    case = given.disposed_risk()
    case.close(ctx(OFFICER, "risk_officer"), reason="cause removed")
    [event] = case.collect_events()
    assert isinstance(event, RiskCase.Closed)
    assert event.reason == "cause removed"
    assert case.status == "closed"


def test_closing_needs_a_reason(given, ctx):
    case = given.disposed_risk()
    with pytest.raises(ReasonRequired):
        case.close(ctx(OFFICER, "risk_officer"), reason=" ")


def test_an_undisposed_case_cannot_be_closed(given, ctx):
    case = given.risk_with_response("avoid")
    with pytest.raises(IllegalTransition) as refused:
        case.close(ctx(OFFICER, "risk_officer"), reason="enough")
    assert refused.value.state == "responding"


def test_a_closed_case_cannot_be_closed_again(given, ctx):
    case = given.closed_risk()
    with pytest.raises(IllegalTransition):
        case.close(ctx(OFFICER, "risk_officer"), reason="again")


def test_a_closed_case_takes_no_more_readings(given, ctx):
    case = given.closed_risk()
    with pytest.raises(IllegalTransition):
        case.record_reading(ctx(OFFICER, "risk_officer"), indicator="overdue_days", value=Decimal("1"),
                            threshold=Decimal("100"), direction="above")


# ------------------------------------------------------------------ blocking business (§4 avoid)


def test_an_open_case_with_response_avoid_blocks_business(given):
    assert given.risk_with_response("avoid").blocks_business is True


def test_a_closed_case_with_response_avoid_no_longer_blocks_business(given):
    assert given.closed_risk("avoid").blocks_business is False


@pytest.mark.parametrize("response", ["reduce", "transfer", "accept"])
def test_an_open_case_with_another_response_does_not_block_business(given, response):
    assert given.risk_with_response(response).blocks_business is False


def test_a_case_without_a_response_does_not_block_business(given):
    assert given.assessed_risk({"overdue": 95}).blocks_business is False


# ------------------------------------------------------------------ evidence on every event


def test_every_risk_event_carries_the_evidence_of_its_command(evidence_ctx, carries_evidence, now):
    before = now()
    customer_id = uuid.uuid4()
    case = RiskCase.identify(evidence_ctx, subject_type="customer", subject_id=customer_id, customer_id=customer_id,
                             category="market", description="sector downturn")
    case.assess(evidence_ctx, indicator_scores={"sector": 70}, reason="analyst report")
    case.decide_response(evidence_ctx, response="transfer", measures=["credit insurance"], reason="insurable")
    case.record_reading(evidence_ctx, indicator="sector_index", value=Decimal("70"), threshold=Decimal("80"),
                        direction="below")
    case.dispose(evidence_ctx, actions=["insured"], findings="transferred")
    case.close(evidence_ctx, reason="insured")
    events = case.collect_events()
    after = now()
    assert [type(e) for e in events] == [RiskCase.Identified, RiskCase.Assessed, RiskCase.ResponseDecided,
                                         RiskCase.ReadingRecorded, RiskCase.WarningRaised, RiskCase.Disposed,
                                         RiskCase.Closed]
    for event in events:
        carries_evidence(event, evidence_ctx, recorded_between=(before, after))
