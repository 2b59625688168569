"""The screening scorecard, retail-scorecard 1.0 (measures §2.2 step 2).

Expected points are read off the table in ``domain/screening.py``'s docstring:
base 50; credit standing no_default +30 / in_default -60 / otherwise 0; age
under 21 -10, 21-25 0, 26-60 +10, over 60 +5; balance negative -20, 0 to
999.99 0, 1,000 to 9,999.99 +10, 10,000 and more +20; housing loan -5;
personal loan -10; job unemployed -10, student or unknown -5, any other +5;
a missing input 0. Outcome: >= 70 pass, 40-69 refer, < 40 decline.

Every point value is a multiple of 5 and so is the base, so a score is always
a multiple of 5: the outcome edges are tested at 65 / 70 and 35 / 40 (69 and 39
cannot occur).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain import screening
from domain.base import InvalidValue

BASE = 50
FACTORS = ("credit_standing", "age", "balance", "housing_loan", "personal_loan", "employment")


def points(inputs: dict, factor: str) -> int:
    return screening.score(inputs).contributions[factor]


# ------------------------------------------------------------------ each factor's bands


@pytest.mark.parametrize(
    ("standing", "expected"),
    [("no_default", 30), ("in_default", -60), ("unknown", 0), (None, 0)],
)
def test_credit_standing_points(standing, expected):
    assert points({"credit_standing": standing}, "credit_standing") == expected


@pytest.mark.parametrize(
    ("age", "expected"),
    [(18, -10), (20, -10), (21, 0), (25, 0), (26, 10), (60, 10), (61, 5), (85, 5), (None, 0)],
)
def test_age_points_at_the_band_edges(age, expected):
    assert points({"age": age}, "age") == expected


@pytest.mark.parametrize(
    ("balance", "expected"),
    [
        (Decimal("-1"), -20), (Decimal("-0.01"), -20), (Decimal("0"), 0), (Decimal("999.99"), 0),
        (Decimal("1000"), 10), (Decimal("9999.99"), 10), (Decimal("10000"), 20), (Decimal("2500000"), 20),
        (None, 0),
    ],
)
def test_balance_points_at_the_band_edges(balance, expected):
    assert points({"balance": balance}, "balance") == expected


@pytest.mark.parametrize(("balance", "expected"), [(-1, -20), (999.99, 0), (1000, 10), ("9999.99", 10), ("10000", 20)])
def test_balance_points_do_not_depend_on_how_the_amount_is_written(balance, expected):
    assert points({"balance": balance}, "balance") == expected


@pytest.mark.parametrize(("has_loan", "expected"), [(True, -5), (False, 0), (None, 0)])
def test_housing_loan_points(has_loan, expected):
    assert points({"housing_loan": has_loan}, "housing_loan") == expected


@pytest.mark.parametrize(("has_loan", "expected"), [(True, -10), (False, 0), (None, 0)])
def test_personal_loan_points(has_loan, expected):
    assert points({"personal_loan": has_loan}, "personal_loan") == expected


@pytest.mark.parametrize(
    ("job", "expected"),
    [("unemployed", -10), ("student", -5), ("unknown", -5), ("technician", 5), ("management", 5),
     ("retired", 5), (None, 0)],
)
def test_employment_points_come_from_the_job(job, expected):
    assert points({"job": job}, "employment") == expected


# ------------------------------------------------------------------ the whole result


def test_missing_inputs_contribute_nothing_and_are_shown():
    result = screening.score({})
    assert result.contributions == {"base": BASE, **{factor: 0 for factor in FACTORS}}
    assert result.score == BASE


def test_the_score_is_the_base_plus_every_contribution():
    inputs = {"credit_standing": "no_default", "age": 35, "balance": Decimal("2500"), "housing_loan": True,
              "personal_loan": False, "job": "technician"}
    result = screening.score(inputs)
    assert result.contributions == {"base": 50, "credit_standing": 30, "age": 10, "balance": 10,
                                    "housing_loan": -5, "personal_loan": 0, "employment": 5}
    assert result.score == 50 + 30 + 10 + 10 - 5 + 0 + 5
    assert result.outcome == "pass"


def test_the_result_names_the_model_and_keeps_the_inputs():
    inputs = {"age": 44, "job": "admin."}
    result = screening.score(inputs)
    assert (result.model_name, result.model_version) == ("retail-scorecard", "1.0")
    assert result.inputs == inputs
    assert result.inputs is not inputs


def test_rescoring_the_recorded_inputs_with_the_recorded_version_gives_the_same_result():
    first = screening.score({"credit_standing": "in_default", "age": 23, "balance": "-40", "job": "student"})
    again = screening.score(first.inputs, first.model_name, first.model_version)
    assert again == first


def test_the_worst_profile_is_declined():
    result = screening.score({"credit_standing": "in_default", "age": 19, "balance": Decimal("-5"),
                              "housing_loan": True, "personal_loan": True, "job": "unemployed"})
    assert result.score == 50 - 60 - 10 - 20 - 5 - 10 - 10
    assert result.outcome == "decline"


# ------------------------------------------------------------------ outcome edges


@pytest.mark.parametrize(
    ("inputs", "score", "outcome"),
    [
        ({"credit_standing": "no_default", "personal_loan": True}, 50 + 30 - 10, "pass"),                    # 70
        ({"credit_standing": "no_default", "personal_loan": True, "housing_loan": True}, 50 + 30 - 10 - 5,
         "refer"),                                                                                           # 65
        ({"job": "unemployed"}, 50 - 10, "refer"),                                                           # 40
        ({"job": "unemployed", "housing_loan": True}, 50 - 10 - 5, "decline"),                               # 35
        ({"age": 30, "balance": Decimal("1000")}, 50 + 10 + 10, "pass"),                                     # 70
        ({"age": 30, "balance": Decimal("999.99")}, 50 + 10 + 0, "refer"),                                   # 60
    ],
)
def test_the_outcome_turns_at_70_and_at_40(inputs, score, outcome):
    result = screening.score(inputs)
    assert (result.score, result.outcome) == (score, outcome)


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(("key", "value"), [("age", "thirty"), ("balance", "a lot"), ("balance", "NaN")])
def test_an_input_that_cannot_be_scored_is_refused_and_named(key, value):
    with pytest.raises(InvalidValue) as refused:
        screening.score({key: value})
    assert refused.value.field == f"inputs.{key}"


def test_an_unknown_model_version_is_refused():
    with pytest.raises(InvalidValue) as refused:
        screening.score({}, model_version="0.9")
    assert refused.value.field == "model_version"
