"""The built-in screening model (measures §2.2 step 2): a points scorecard.

A scorecard adds documented points per factor to a base score; each factor's
points are its contribution, so every result explains itself and can be
re-scored later from the recorded inputs with the recorded model version.

Model ``retail-scorecard`` version ``1.0``. Base 50 points, then:

================  ==============================================  ======
factor            band                                            points
================  ==============================================  ======
credit_standing   ``no_default``                                  +30
                  ``in_default``                                  -60
                  unknown / not given                               0
age               under 21                                        -10
                  21-25                                             0
                  26-60                                           +10
                  over 60                                          +5
balance           negative                                        -20
(EUR, major units) 0 to 999.99                                      0
                  1,000 to 9,999.99                               +10
                  10,000 and more                                 +20
housing_loan      yes                                              -5
personal_loan     yes                                             -10
employment        ``unemployed``                                  -10
                  ``student`` or ``unknown``                       -5
                  any other occupation                             +5
================  ==============================================  ======

Outcome: score >= 70 ``pass``; 40-69 ``refer`` (to manual review); < 40 ``decline``.
A factor whose input is missing contributes 0 and is shown as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

from domain.base import InvalidValue

PASS_AT = 70
REFER_AT = 40


@dataclass(frozen=True)
class ScreeningResult:
    """A scored, explainable result: ``contributions`` maps factor -> points."""

    model_name: str
    model_version: str
    inputs: dict[str, Any]
    score: int
    contributions: dict[str, int]
    outcome: str


def _credit(value: Any) -> int:
    return {"no_default": 30, "in_default": -60}.get(value, 0)


def _age(value: Any) -> int:
    if value is None:
        return 0
    age = int(value)
    if age < 21:
        return -10
    if age <= 25:
        return 0
    if age <= 60:
        return 10
    return 5


def _balance(value: Any) -> int:
    if value is None:
        return 0
    amount = Decimal(str(value))
    if amount < 0:
        return -20
    if amount < 1000:
        return 0
    if amount < 10000:
        return 10
    return 20


def _housing(value: Any) -> int:
    return -5 if value is True else 0


def _personal(value: Any) -> int:
    return -10 if value is True else 0


def _employment(value: Any) -> int:
    if value is None:
        return 0
    if value == "unemployed":
        return -10
    if value in ("student", "unknown"):
        return -5
    return 5


_FACTORS: dict[str, tuple[str, Callable[[Any], int]]] = {
    "credit_standing": ("credit_standing", _credit),
    "age": ("age", _age),
    "balance": ("balance", _balance),
    "housing_loan": ("housing_loan", _housing),
    "personal_loan": ("personal_loan", _personal),
    "employment": ("job", _employment),
}

MODEL_NAME = "retail-scorecard"
MODEL_VERSION = "1.0"
BASE_SCORE = 50


def score_v1(inputs: dict[str, Any]) -> ScreeningResult:
    """Score ``inputs`` (keys: credit_standing, age, balance, housing_loan,
    personal_loan, job) with scorecard 1.0. Raises :class:`InvalidValue` for an
    input that cannot be read (e.g. an age that is not a number)."""
    contributions: dict[str, int] = {"base": BASE_SCORE}
    for factor, (key, points) in _FACTORS.items():
        try:
            contributions[factor] = points(inputs.get(key))
        except (ValueError, ArithmeticError, TypeError) as exc:
            raise InvalidValue(f"inputs.{key}", f"cannot be scored: {exc}") from None
    score = sum(contributions.values())
    outcome = "pass" if score >= PASS_AT else "refer" if score >= REFER_AT else "decline"
    return ScreeningResult(MODEL_NAME, MODEL_VERSION, dict(inputs), score, contributions, outcome)


MODELS: dict[tuple[str, str], Callable[[dict[str, Any]], ScreeningResult]] = {
    (MODEL_NAME, MODEL_VERSION): score_v1,
}


def score(inputs: dict[str, Any], model_name: str = MODEL_NAME, model_version: str = MODEL_VERSION) -> ScreeningResult:
    """Score with a named model version; raises :class:`InvalidValue` for an unknown model."""
    try:
        model = MODELS[(model_name, model_version)]
    except KeyError:
        raise InvalidValue("model_version", f"no screening model {model_name} {model_version}") from None
    return model(inputs)
