"""A synthetic but realistic workload over every aggregate, for benchmarks and demos.

``generate_demo(app, events=N, seed=S, start=date(2024, 1, 1), months=12)``
plays ``months`` months of a bank's customer acquisition (measures §1-§5) and
writes about ``N`` events; it stops as soon as the saved count reaches ``N``
(so the total is ``N`` or a little more, by at most one batch), or at the end
of the business time if that comes first.

Every event is made by the domain's own commands, so every rule holds, in
business time (``Context.occurred_at``, China Standard Time, stored as UTC):

- **the bank** (§1, §3): three branches (Pudong, Jing'an, Suzhou), each with a
  branch head, eight customer managers in a corporate and a retail team, two
  reviewers and two operations staff; product managers, risk officers and a
  compliance auditor at head office. Trainings every few months and an annual
  AML refresher; quarterly bonuses and certificates, a yearly special award and
  promotion; one customer manager leaves half-way, after a successor joined, and
  hands over the portfolio. Per year: an appraisal scheme (weights summing to
  100) and targets for the bank, each branch, team and customer manager, sized
  from the expected volume, with quarterly and half-year checkpoints; the first
  year's scheme is redefined in April, and a branch target is revised each July;
- **customers** (§2): about 20 % corporate, 80 % retail, over the six channels
  and several segments, with facts in the four groups, credit standing, the
  built-in scorecard, and a manual review by a reviewer (never the manager):
  about 60 % of pass/refer customers qualify; key customers are marked;
- **visits** (§2.3): acquisition visits after qualification, prepared for key
  customers, some rescheduled or cancelled; follow-up visits for account
  holders, some of them left planned in the past (overdue follow-ups);
- **proposals and contracts** (§2.4): revisions, returns by a product manager
  (never the drafter), counter-offers; about 70 % accepted; contracts with clause
  findings resolved before a branch head approves and signs;
- **accounts and service** (§2.5): documents sometimes returned and re-applied,
  products signed, satisfaction follow-ups 1-5, monthly business figures in CNY
  (``Decimal``), cross-selling, manager reassignments, a few terminations;
- **risk** (§4): cases on customers and contracts, assessed, answered (some with
  *avoid*: the customer's open proposals are withdrawn and the domain refuses
  to sign its contracts until the case is closed), monitored with readings
  whose threshold crossings raise warnings, disposed and closed.

The arrival rate of new customers follows the season (Q1 "opening red"
campaign, Spring Festival, golden weeks, half-year and year-end pushes) and is
steered so that the planned events of all customers add up to about ``N``.

Determinism. All choices come from one ``random.Random(seed)`` in a fixed order
and every id is a UUID v5 of the seed, the kind and a counter, so the same seed
gives the same aggregates, events and ids (staff, scheme and target ids are the
domain's own, derived from their natural keys). Running the same seed again on
the same store is refused with :class:`DemoAlreadyGenerated`; another seed adds
another cohort of customers to the same bank (existing staff, schemes and
targets are reused, not recreated).

Memory. Aggregates are saved in batches of about ``batch_size`` aggregates
with one ``app.save(...)`` each; an aggregate is kept in memory only while its
customer's work is open (account holders stay, for their monthly figures) and
saved again when it has new events.
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Sequence

from application.app import TuohuApplication, screening_inputs
from domain import screening
from domain.base import Context, TuohuAggregate
from domain.contract import Contract, ContractSigningBlockedByRisk
from domain.customer import (ACCOUNT_OPENED, APPLIED, DOCUMENTS_ACCEPTED, DOCUMENTS_RETURNED, QUALIFIED, Customer,
                             Successor)
from domain.proposal import OPEN as PROPOSAL_OPEN
from domain.proposal import Proposal
from domain.risk import RiskCase, assess_level, is_beyond
from domain.team import AppraisalScheme, Staff, Target, scheme_id, staff_id, target_id
from domain.visit import CONDUCTED, PLANNED, PREPARED, Visit

CST = timezone(timedelta(hours=8), "CST")  #: China Standard Time: business hours are local
NAMESPACE = uuid.UUID("3f1c9a52-6d0e-4c1b-8f7e-64656d6f7475")
CURRENCY = "CNY"
CHANNEL = "demo"
DAYS_PER_MONTH = 30.44
#: The arrival rate aims a little above the requested count so that the count is reached before the end.
TARGET_SLACK = 1.02

# --------------------------------------------------------------------------
# The bank
# --------------------------------------------------------------------------

#: (staff code prefix, branch id, label, share of new customers)
BRANCHES = (
    ("PD", "pudong", "浦東分行", 0.40),
    ("JA", "jingan", "靜安分行", 0.35),
    ("SZ", "suzhou", "蘇州分行", 0.25),
)
HEAD_OFFICE = "head-office"
CORPORATE_MANAGERS, RETAIL_MANAGERS = 3, 5
CITY = {"pudong": "上海", "jingan": "上海", "suzhou": "蘇州"}
DISTRICTS = {
    "pudong": ("浦東新區張江路", "浦東新區世紀大道", "浦東新區金橋路", "浦東新區東方路"),
    "jingan": ("靜安區南京西路", "靜安區延安中路", "靜安區共和新路", "靜安區江寧路"),
    "suzhou": ("蘇州工業園區星湖街", "姑蘇區人民路", "蘇州工業園區金雞湖大道", "吳中區東吳北路"),
}

SURNAMES = "王李張劉陳楊黃趙吳周徐孫馬朱胡郭何高林羅鄭梁謝宋唐許韓馮鄧曹彭曾蕭田董袁潘蔣蔡余杜葉程蘇魏呂丁任沈姚盧姜崔鍾譚陸汪范金石廖賈夏韋方白鄒孟熊秦邱江尹薛段雷侯龍史陶黎賀顧毛郝龔邵萬錢嚴武戴莫孔湯"
GIVEN = "偉芳娜敏靜麗強磊軍洋勇艷杰娟濤明超蘭霞平剛英華建國志文博涵雨欣浩宇思彤俊傑佳怡梓萱軒諾晨曦瑤琳睿哲嘉慧婷穎鵬飛昊然"
BRANDS = ("恒達", "華信", "遠航", "嘉禾", "永盛", "中聯", "凱利", "新源", "天合", "博源", "鼎盛", "瑞豐", "金橋", "東方",
          "華茂", "海納", "啟明", "長風", "卓越", "匯通")
#: industry -> (company-name word, business scope)
INDUSTRIES = {
    "manufacturing": ("精密機械", "design and manufacture of precision machine parts"),
    "electronics": ("電子科技", "electronic components and assembly"),
    "logistics": ("物流", "road freight, warehousing and distribution"),
    "software": ("信息技術", "software development and IT services"),
    "wholesale": ("貿易", "wholesale of consumer goods, import and export"),
    "construction": ("建設工程", "building construction and fit-out"),
    "healthcare": ("醫療器械", "distribution of medical devices"),
    "food": ("食品", "food processing and cold-chain sales"),
    "new_energy": ("新能源科技", "photovoltaic and battery-storage systems"),
    "cross_border_ecommerce": ("跨境電商", "cross-border online retail"),
    "professional_services": ("企業管理諮詢", "management consulting and corporate services"),
}


def _table(weights: dict[Any, float]) -> tuple[tuple[Any, ...], tuple[float, ...]]:
    """``(values, cumulative weights)`` for :meth:`random.Random.choices`."""
    values, cumulative, total = [], [], 0.0
    for value, weight in weights.items():
        total += weight
        values.append(value)
        cumulative.append(total)
    return tuple(values), tuple(cumulative)


def _pick(rng: random.Random, table: tuple[tuple[Any, ...], tuple[float, ...]]) -> Any:
    return rng.choices(table[0], cum_weights=table[1])[0]


BRANCH_MIX = _table({b[1]: b[3] for b in BRANCHES})
CHANNEL_MIX = {
    "retail": _table({"branch": 30, "online": 25, "telemarketing": 12, "referral": 15, "partner": 10,
                      "market_research": 8}),
    "corporate": _table({"branch": 15, "online": 5, "telemarketing": 10, "referral": 20, "partner": 30,
                         "market_research": 20}),
}
SOURCES = {
    "branch": ("walk-in at the branch counter (application form)", "community event in the branch's district",
               "questionnaire filled in at the branch"),
    "online": ("self-submitted through mobile banking", "application on the bank's website",
               "social media campaign (WeChat official account)"),
    "telemarketing": ("outbound call campaign", "inbound call to the customer service hotline"),
    "referral": ("referred by an existing customer",),
    "partner": ("government body: district commerce bureau", "enterprise partner: payroll programme",
                "industry association", "third-party platform"),
    "market_research": ("industry fair", "market survey of the industrial park",
                        "analysis of new business registrations"),
}
#: segment -> (share, median target deposit balance in CNY, key-customer probability)
SEGMENTS = {
    "retail": {"mass_retail": (48, 30_000, 0.0), "young_professional": (18, 45_000, 0.0),
               "senior": (12, 180_000, 0.0), "affluent": (19, 600_000, 0.15), "private_banking": (3, 8_000_000, 1.0)},
    "corporate": {"micro_enterprise": (35, 300_000, 0.02), "sme": (40, 3_000_000, 0.10),
                  "mid_corporate": (20, 30_000_000, 0.60), "large_corporate": (5, 300_000_000, 1.0)},
}
SEGMENT_MIX = {kind: _table({s: v[0] for s, v in table.items()}) for kind, table in SEGMENTS.items()}
BALANCE_SIGMA = 0.8
#: Mean target deposit balance (CNY) of a customer of each kind (lognormal around the segment medians).
MEAN_BALANCE = {kind: sum(v[0] * v[1] for v in table.values()) / sum(v[0] for v in table.values())
                * math.exp(BALANCE_SIGMA ** 2 / 2) for kind, table in SEGMENTS.items()}
#: Mean monthly fee income (CNY) of an account of each kind (see ``_do_figures``).
MEAN_FEE = {"retail": 15 + MEAN_BALANCE["retail"] * 0.85 * 0.0004,
            "corporate": 200 + MEAN_BALANCE["corporate"] * 0.0003}
#: Share of accounts with a loan product, by kind (from the product mix of proposals).
LOAN_SHARE = {"retail": 0.15, "corporate": 0.8}
#: Products offered in proposals, by segment (weights).
PRODUCTS = {
    "mass_retail": {"term_deposit": 3, "credit_card": 3, "payroll_account": 2, "personal_loan": 1,
                    "wealth_management": 1, "pension_account": 1},
    "young_professional": {"credit_card": 3, "fund_investment": 2, "personal_loan": 2, "mortgage": 1,
                           "pension_account": 2},
    "senior": {"term_deposit": 4, "wealth_management": 2, "insurance_agency": 2, "pension_account": 1},
    "affluent": {"wealth_management": 4, "fund_investment": 3, "term_deposit": 2, "insurance_agency": 2, "mortgage": 1},
    "private_banking": {"wealth_management": 4, "fund_investment": 3, "insurance_agency": 2, "family_trust": 1},
    "micro_enterprise": {"corporate_current_account": 4, "payroll_service": 2, "working_capital_loan": 2,
                         "pos_acquiring": 2},
    "sme": {"corporate_current_account": 3, "cash_management": 2, "working_capital_loan": 3, "payroll_service": 2,
            "bill_discounting": 2, "fx_settlement": 1},
    "mid_corporate": {"cash_management": 3, "working_capital_loan": 3, "trade_finance": 2, "fx_settlement": 2,
                      "supply_chain_finance": 2, "payroll_service": 1},
    "large_corporate": {"cash_management": 3, "trade_finance": 3, "supply_chain_finance": 2, "fx_settlement": 2,
                        "syndicated_loan": 1},
}
LOAN_PRODUCTS = frozenset({"personal_loan", "mortgage", "working_capital_loan", "trade_finance", "bill_discounting",
                           "supply_chain_finance", "syndicated_loan"})
DIRECT_PRODUCTS = ("debit_card", "mobile_banking")
#: Retail segments that often just open an account at the counter (no proposal).
DIRECT_SEGMENTS = frozenset({"mass_retail", "young_professional", "senior"})
DOCUMENTS = {
    "retail": ["resident identity card", "proof of address", "proof of income", "tax residency self-certification"],
    "corporate": ["business licence", "articles of association", "legal representative's identity card",
                  "authorised signatory list", "beneficial ownership declaration",
                  "board resolution to open the account"],
}
RETURN_REASONS = {
    "retail": ("proof of address older than three months", "identity card copy unreadable",
               "signature does not match the specimen", "tax residency self-certification not signed"),
    "corporate": ("beneficial ownership declaration incomplete", "board resolution for the account missing",
                  "business licence copy not certified", "authorised signatory list unsigned"),
}
JOBS_BY_AGE = (
    (24, _table({"student": 40, "services": 20, "admin.": 15, "technician": 15, "blue-collar": 8, "unemployed": 2})),
    (58, _table({"admin.": 13, "blue-collar": 15, "technician": 15, "services": 11, "management": 14,
                 "entrepreneur": 6, "self-employed": 6, "housemaid": 2, "unemployed": 3, "unknown": 1})),
    (200, _table({"retired": 75, "self-employed": 8, "management": 5, "housemaid": 4, "services": 5, "unknown": 3})),
)
AGES = {"mass_retail": (20, 64), "young_professional": (22, 32), "senior": (60, 80), "affluent": (30, 65),
        "private_banking": (35, 72)}
RATINGS = ("AAA", "AA+", "AA", "AA-", "A+", "A", "BBB")

SLOTS = (9 * 60 + 30, 10 * 60, 11 * 60, 14 * 60, 15 * 60 + 30, 16 * 60 + 30)
DEPARTMENTS = ("product", "risk_management", "operations", "marketing", "compliance")

REJECT_REASONS = {
    "retail": ("proof of income could not be verified", "identity documents inconsistent with the application",
               "needs do not match the bank's products", "adverse information found in the verification call"),
    "corporate": ("business licence expired", "ultimate beneficial owner could not be identified",
                  "financial statements inconsistent with tax filings", "related party of a defaulted borrower"),
}
QUALIFY_REASONS = ("information verified against identity documents and bank records; risk acceptable",
                   "facts true and complete; credit standing and needs fit the bank's products",
                   "verified by call-back; referred score explained by a thin credit file")
VISIT_PURPOSES = {
    "retail": ("introduce deposit and wealth products", "understand savings and borrowing needs",
               "explain mobile banking and payroll services"),
    "corporate": ("introduce cash management and payroll services", "understand financing needs",
                  "meet the CFO to discuss trade finance"),
}
VISIT_OUTCOMES = ("customer interested; asked for a proposal", "needs understood; follow-up agreed",
                  "customer comparing offers from two banks", "introduced products; decision next week")
NEEDS_LEARNED = {
    "retail": ("wants a better return than demand deposits at low risk", "plans to buy a flat within two years",
               "salary is paid through another bank", "wants to save for retirement"),
    "corporate": ("needs working capital for seasonal orders", "wants consolidated cash management across subsidiaries",
                  "pays suppliers abroad in USD", "plans to expand the factory next year"),
}
NEXT_STEPS = ("send a proposal", "arrange a meeting with the product manager", "collect financial statements",
              "call back after the customer's internal meeting")
RESCHEDULE_REASONS = ("customer asked for a later date", "customer manager on mandatory training",
                      "customer travelling on business")
CANCEL_REASONS = ("customer no longer available at that time", "duplicate appointment",
                  "customer asked to talk by phone later")
REVISE_REASONS = ("pricing aligned with the branch's delegated pricing authority", "customer asked for a better rate",
                  "customer asked to add a product", "fee waiver shortened after the product manager's return")
RETURN_PROPOSAL_REASONS = ("fee waiver beyond the branch's delegated pricing authority",
                           "loan pricing below the floor for this credit rating",
                           "rights and obligations omit the personal-information consent")
DECLINE_REASONS = ("customer chose a competitor's offer", "rate not competitive with the customer's current bank",
                   "customer postponed the decision to next year")
WITHDRAW_REASONS = ("customer unresponsive for 30 days", "customer's needs changed; the proposal no longer fits")
CLAUSE_FINDINGS = (
    ("§4.2 early termination", "penalty exceeds the bank's standard"),
    ("§5.3 data protection and consent", "personal-information consent wording missing"),
    ("§7.1 limitation of liability", "liability cap not in the bank's standard wording"),
    ("§9 governing law and disputes", "arbitration venue is not the bank's standard"),
    ("Annex 2 fee schedule", "fee schedule differs from the approved proposal"),
    ("§6 collateral and guarantees", "guarantee amount not stated"),
)
RESOLUTIONS = ("clause replaced by the bank's standard wording", "amended on the legal department's advice",
               "consent wording added and initialled by the customer",
               "fee schedule corrected to the approved revision")
FEEDBACK = {1: "complained about unexpected fees", 2: "unhappy with the waiting time at the counter",
            3: "neutral; had trouble logging in to the app", 4: "satisfied; asked about a better deposit rate",
            5: "very satisfied with the manager's responsiveness"}
SATISFACTION = _table({1: 3, 2: 6, 3: 14, 4: 40, 5: 37})
KEY_SATISFACTION = _table({2: 3, 3: 10, 4: 42, 5: 45})

RISK_CATEGORIES = {
    "customer": _table({"credit": 40, "reputational": 25, "market": 20, "operational": 15}),
    "contract": _table({"operational": 50, "credit": 35, "market": 15}),
}
RISK_DESCRIPTIONS = {
    "credit": ("overdue on a credit card at another bank (credit bureau report)",
               "guarantor's credit standing deteriorated", "main buyer delayed payments for two months"),
    "market": ("industry downturn: export orders down by a third", "collateral exposed to a falling property market"),
    "operational": ("documents collected without face-to-face verification",
                    "non-standard clause accepted without legal review"),
    "reputational": ("complaint about fees on social media", "negative press about the customer's parent company"),
}
RISK_INDICATORS = {
    "credit": ("probability_of_default", "overdue_days", "collateral_coverage"),
    "market": ("industry_outlook", "concentration"),
    "operational": ("process_deviation", "control_weakness"),
    "reputational": ("complaint_severity", "media_exposure"),
}
#: category -> (reading indicator, threshold, direction, safe start, step)
RISK_READINGS = {
    "credit": ("days_overdue", Decimal(30), "above", 5, 12),
    "market": ("industry_pmi", Decimal(50), "below", 52, 1.5),
    "operational": ("open_process_deviations", Decimal(3), "above", 1, 1.2),
    "reputational": ("complaints_30d", Decimal(5), "above", 2, 2),
}
RESPONSES = {
    "high": _table({"avoid": 45, "reduce": 35, "transfer": 20}),
    "medium": _table({"reduce": 60, "transfer": 40}),
    "low": _table({"accept": 60, "reduce": 40}),
}
MEASURES = {
    "avoid": ["stop new business with the customer", "withdraw open proposals", "inform the branch and compliance"],
    "reduce": ["stricter document review", "monthly monitoring of the indicator", "additional collateral requested"],
    "transfer": ["credit insurance taken out", "risk-transfer agreement with the guarantor"],
    "accept": ["quarterly monitoring"],
}
DISPOSAL_ACTIONS = ("investigated with the customer", "collateral re-valued", "process corrected and staff retrained",
                    "complaint resolved with the customer", "exposure reduced")

TRAININGS = {
    "customer_manager": ("consultative selling", "corporate cash management products",
                         "wealth products and suitability", "consumer protection and complaint handling"),
    "product_manager": ("pricing and delegated authority", "supply-chain finance products"),
    "reviewer": ("document fraud detection", "credit bureau report reading"),
    "operations": ("account-opening controls", "beneficial ownership checks"),
    "risk_officer": ("credit rating models", "early-warning indicators"),
    "compliance_auditor": ("personal information protection law", "audit sampling"),
    "branch_head": ("leading acquisition teams", "branch risk management"),
}
EXTERNAL_TRAININGS = ("industry seminar: digital banking", "CFA institute workshop", "banking association risk course")
SCHEME = (
    ("new_customers", "acquisition_results", 25), ("accounts_opened", "acquisition_results", 20),
    ("deposit_balance_growth", "acquisition_results", 15), ("fee_income", "acquisition_results", 10),
    ("good_credit_share", "customer_quality", 10), ("qualification_rate", "customer_quality", 5),
    ("average_satisfaction", "service_quality", 10), ("visits_conducted", "service_quality", 5),
)

MONTH_WEIGHT = {1: 1.25, 2: 0.85, 3: 1.2, 4: 1.0, 5: 0.95, 6: 1.1, 7: 0.95, 8: 0.9, 9: 1.05, 10: 0.9, 11: 1.0,
                12: 1.15}
SPRING_FESTIVAL = {2020: date(2020, 1, 25), 2021: date(2021, 2, 12), 2022: date(2022, 2, 1), 2023: date(2023, 1, 22),
                   2024: date(2024, 2, 10), 2025: date(2025, 1, 29), 2026: date(2026, 2, 17), 2027: date(2027, 2, 6),
                   2028: date(2028, 1, 26), 2029: date(2029, 2, 13), 2030: date(2030, 2, 3)}

# Priors of the arrival controller (events per customer), replaced by what the run plans.
PRIOR_LIFECYCLE_EVENTS = 18.0  # acquisition events of a customer whose work is not cut off by the end of the run
PRIOR_SERVICE_RATE = 0.7  # service events per customer per month of account life, all customers averaged
PRIOR_OPEN_LAG_MONTHS = 1.4
#: Service events once per account beyond the monthly rate (cross-selling, key marking, termination, rounding).
SERVICE_START_EVENTS = 0.8
ACCOUNT_RATE = 0.39  # share of new customers that open an account sooner or later (for sizing targets)


def lifecycle_share(months_left: float) -> float:
    """Share of a customer's acquisition events that fall before the end of the run when it arrives
    ``months_left`` months before it (fitted to what the plans give: 0.4 on the last day, 1 from 2.5 months)."""
    return min(1.0, 0.4 + 0.6 * (max(months_left, 0.0) / 2.5) ** 0.7)


def season(day: date) -> float:
    """Relative arrival weight of new customers on ``day`` (weekday 1.0 in a plain month)."""
    weight = MONTH_WEIGHT[day.month] * (1.0 if day.weekday() < 5 else 0.35 if day.weekday() == 5 else 0.2)
    festival = SPRING_FESTIVAL.get(day.year)
    if festival is not None and -1 <= (day - festival).days <= 6:
        weight *= 0.15
    if (day.month == 10 and day.day <= 7) or (day.month == 1 and day.day == 1):
        weight *= 0.2
    if day.month == 5 and day.day <= 5:
        weight *= 0.4
    return weight


def _at(day: date, minutes: int) -> datetime:
    return datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=CST)


def _business_day(day: date, n: int) -> date:
    """The ``n``-th business day (Monday-Friday) after ``day``; ``n = 0``: ``day`` or the next business day."""
    while day.weekday() >= 5:
        day += timedelta(days=1)
    for _ in range(n):
        day += timedelta(days=1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
    return day


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, 1) if day.day == 1 else date(year, month + 1, min(day.day, 28))


def _month_key(when: datetime) -> str:
    return f"{when.year:04d}-{when.month:02d}"


def _quarter_key(when: datetime) -> str:
    return f"{when.year:04d}-Q{(when.month - 1) // 3 + 1}"


def _money(value: float) -> Decimal:
    return Decimal(f"{max(value, 0.0):.2f}")


# --------------------------------------------------------------------------
# Report and errors
# --------------------------------------------------------------------------


class DemoAlreadyGenerated(Exception):
    """The store already holds the demo of this seed (its first customer exists)."""


@dataclass
class DemoReport:
    """What a demo run wrote.

    ``aggregates``: new aggregates per type; ``events_by_aggregate`` and
    ``events_by_type`` (``"Customer.Registered"``): events written; ``reused``:
    staff, schemes and targets found in the store and used as they are.
    """

    seed: int
    start: date
    months: int
    requested_events: int
    events: int = 0
    batches: int = 0
    aggregates: dict[str, int] = field(default_factory=dict)
    events_by_aggregate: dict[str, int] = field(default_factory=dict)
    events_by_type: dict[str, int] = field(default_factory=dict)
    reused: dict[str, int] = field(default_factory=dict)
    business_time_reached: datetime | None = None
    stopped_at_requested_count: bool = False
    signings_refused_by_risk: int = 0


# --------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------


@dataclass
class _Member:
    code: str
    name: str
    role: str
    branch: str
    team: str
    joined_at: datetime
    staff: Staff | None = None

    def __post_init__(self) -> None:
        # The code is the member's user name too (``tuohu users add pd-cm06 --role customer_manager
        # --branch pudong``), and user names are lowercase.
        self.code = self.code.lower()

    @property
    def active(self) -> bool:
        return self.staff is not None and self.staff.active

    def as_successor(self) -> Successor:
        """This member as a customer's new manager (the demo's staff code is the user name)."""
        return Successor(name=self.code, role=self.role, branch=self.branch, active=self.active)


class _Journey:
    """One customer from arrival to the end of the run, and its open aggregates."""

    __slots__ = ("number", "kind", "segment", "branch", "channel", "source_detail", "manager", "name", "signatory",
                 "facts", "credit", "registered_at", "customer", "cause", "objs", "serial", "pending", "blocking",
                 "parked", "serving", "via_contract", "contract_signed", "contract_id", "account_skipped", "products",
                 "balance", "target_balance", "key")

    def __init__(self, number: int) -> None:
        self.number = number
        self.customer: Customer | None = None
        self.objs: dict[str, TuohuAggregate] = {}
        self.serial = 0
        self.pending = 0
        self.blocking: list[uuid.UUID] = []
        self.parked: Contract | None = None
        self.serving = False
        self.via_contract = False
        self.contract_signed = False
        self.account_skipped = False  # the account opening was skipped: its contract was not signed
        self.contract_id: uuid.UUID | None = None
        self.products: list[str] = []
        self.balance = 0.0
        self.cause = ""

    def next_key(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"


Step = tuple[datetime, int, str, "_Journey | None", Any]


class DemoGenerator:
    """Plays the demo; see the module docstring. Use :func:`generate_demo`."""

    def __init__(self, app: TuohuApplication, *, events: int, seed: int = 1, start: date = date(2024, 1, 1),
                 months: int = 12, batch_size: int = 300, progress: Callable[[int], None] | None = None) -> None:
        if events < 1:
            raise ValueError(f"events must be at least 1; got {events}")
        if months < 1:
            raise ValueError(f"months must be at least 1; got {months}")
        self.app = app
        self.requested = events
        self.target = events * TARGET_SLACK
        self.seed = seed
        self.rng = random.Random(seed)
        self.batch_size = max(10, min(batch_size, events // 100))  # small runs: small batches, a small overshoot
        self.progress = progress
        self.t_start = _at(start, 0)
        self.t_end = _at(_add_months(start, months), 0)
        self.correlation_id = f"demo:seed:{seed}"
        self.report = DemoReport(seed=seed, start=start, months=months, requested_events=events)
        self.heap: list[Step] = []
        self.seq = 0
        self.dirty: dict[uuid.UUID, TuohuAggregate] = {}
        self.counters: Counter[str] = Counter()
        self.planned = 0.0
        self.active: dict[int, _Journey] = {}
        self.journeys = 0
        self.referrers: deque[uuid.UUID] = deque(maxlen=500)
        self.members: list[_Member] = []
        self.created: set[uuid.UUID] = set()  # schemes and targets made by this run (only those are revised)
        self.stats: Counter[tuple[str, str, str]] = Counter()  # (indicator, staff code, period) -> value
        self._days = [(self.t_start + timedelta(days=i)).date() for i in range((self.t_end - self.t_start).days)]
        self._season = [season(d) for d in self._days]
        self._months_left = [(self.t_end - _at(d, 0)).days / DAYS_PER_MONTH for d in self._days]
        # Suffix sums for the controller, from day i on: season, season x months left, season x lifecycle share.
        self._s0 = [0.0] * (len(self._days) + 1)
        self._s1 = [0.0] * (len(self._days) + 1)
        self._sf = [0.0] * (len(self._days) + 1)
        for i in range(len(self._days) - 1, -1, -1):
            self._s0[i] = self._s0[i + 1] + self._season[i]
            self._s1[i] = self._s1[i + 1] + self._season[i] * self._months_left[i]
            self._sf[i] = self._sf[i + 1] + self._season[i] * lifecycle_share(self._months_left[i])
        # Running means of what arrivals plan (weights start at the priors').
        self._est = {"n": 20.0, "lifecycle": PRIOR_LIFECYCLE_EVENTS * 20, "service": PRIOR_SERVICE_RATE * 20,
                     "openers": 5.0, "lag": PRIOR_OPEN_LAG_MONTHS * 5}
        self._handlers: dict[str, Callable[[datetime, Any, Any], None]] = {
            name[4:]: getattr(self, name) for name in dir(self) if name.startswith("_do_")
        }

    # ------------------------------------------------------------------ ids, contexts, saving

    def id_for(self, kind: str, number: int) -> uuid.UUID:
        """The id of the ``number``-th aggregate of ``kind`` (``customer``, ``visit``, ...) of this seed."""
        return uuid.uuid5(NAMESPACE, f"tuohu-demo:{self.seed}:{kind}:{number}")  # see first_customer_id()

    def _new_id(self, kind: str) -> uuid.UUID:
        self.counters[kind] += 1
        return self.id_for(kind, self.counters[kind])

    def _ctx(self, actor: str, role: str, when: datetime, cause: str | None = None) -> Context:
        return Context(actor_id=actor, actor_role=role, occurred_at=when, channel=CHANNEL,
                       correlation_id=self.correlation_id, causation_id=cause)

    def _exists(self, aggregate_id: uuid.UUID) -> bool:
        return bool(self.app.recorder.select_events(aggregate_id, limit=1))

    def _touch(self, *aggregates: TuohuAggregate) -> None:
        for aggregate in aggregates:
            self.dirty.setdefault(aggregate.id, aggregate)

    def _flush(self) -> None:
        if not self.dirty:
            return
        aggregates = list(self.dirty.values())
        by_type: Counter[str] = Counter()
        new: Counter[str] = Counter()
        for aggregate in aggregates:
            for event in aggregate.pending_events:
                by_type[type(event).__qualname__] += 1
                if event.originator_version == 1:
                    new[type(aggregate).__name__] += 1
        self.app.save(*aggregates)
        self.dirty.clear()
        written = sum(by_type.values())
        self.report.events += written
        self.report.batches += 1
        for name, count in by_type.items():
            self.report.events_by_type[name] = self.report.events_by_type.get(name, 0) + count
            owner = name.split(".", 1)[0]
            self.report.events_by_aggregate[owner] = self.report.events_by_aggregate.get(owner, 0) + count
        for name, count in new.items():
            self.report.aggregates[name] = self.report.aggregates.get(name, 0) + count
        if self.progress is not None:
            self.progress(written)

    def _push(self, when: datetime, action: str, journey: _Journey | None = None, arg: Any = None,
              events: float = 1) -> bool:
        """Schedule ``action`` at ``when`` (dropped at or after the end); count its planned events."""
        if when >= self.t_end:
            return False
        self.seq += 1
        heapq.heappush(self.heap, (when, self.seq, action, journey, arg))
        if journey is not None:
            journey.pending += 1
        self.planned += events
        return True

    # ------------------------------------------------------------------ time

    def _later(self, t: datetime, lo: int, hi: int) -> datetime:
        """A business-hours time ``lo``..``hi`` business days after ``t`` (0: later the same day if possible)."""
        n = self.rng.randint(lo, hi)
        if n == 0:
            later = t + timedelta(minutes=self.rng.randint(10, 120))
            if later.date() == t.date() and later.hour < 18 and later.weekday() < 5:
                return later
            n = 1
        return _at(_business_day(t.date(), n), self.rng.randint(9 * 60, 17 * 60 + 30))

    def _days_later(self, t: datetime, lo: float, hi: float) -> datetime:
        day = (t + timedelta(days=self.rng.uniform(lo, hi))).date()
        return _at(_business_day(day, 0), self.rng.randint(9 * 60, 17 * 60 + 30))

    def _between(self, first: datetime, last: datetime) -> datetime:
        """A business-hours time on the business day before ``last``, or half-way when that is not after ``first``."""
        day = last.date() - timedelta(days=1)
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        when = _at(day, self.rng.randint(14 * 60, 17 * 60 + 30))
        return when if first < when < last else first + (last - first) / 2

    # ------------------------------------------------------------------ run

    def run(self) -> DemoReport:
        """Generate and save; raises :class:`DemoAlreadyGenerated` before writing anything."""
        check_new_seed(self.app, self.seed)
        self._setup_team()
        if self.report.events >= self.requested:
            self.report.stopped_at_requested_count = True
            return self._done()
        self._push(self.t_start, "day", None, 0, events=0)
        handlers = self._handlers
        while self.heap:
            when, _, action, journey, arg = heapq.heappop(self.heap)
            self.report.business_time_reached = when
            if journey is not None:
                journey.pending -= 1
            handlers[action](when, journey, arg)
            if journey is not None and journey.pending == 0 and not journey.serving:
                self.active.pop(journey.number, None)
            if len(self.dirty) >= self.batch_size:
                self._flush()
                if self.report.events >= self.requested:
                    self.report.stopped_at_requested_count = True
                    break
        else:
            self._flush()
            self.report.stopped_at_requested_count = self.report.events >= self.requested
        return self._done()

    def _done(self) -> DemoReport:
        self.report.aggregates = dict(sorted(self.report.aggregates.items()))
        self.report.events_by_aggregate = dict(sorted(self.report.events_by_aggregate.items()))
        self.report.events_by_type = dict(sorted(self.report.events_by_type.items()))
        return self.report

    # ------------------------------------------------------------------ the team, schemes and targets (§1, §3)

    def _person_name(self) -> str:
        rng = self.rng
        return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))

    def _roster(self) -> list[_Member]:
        rng = self.rng

        def joined() -> datetime:
            return _at(_business_day(self.t_start.date() - timedelta(days=rng.randint(30, 8 * 365)), 0), 9 * 60 + 30)

        members = []
        for prefix, branch, _label, _share in BRANCHES:
            members.append(_Member(f"{prefix}-BH01", self._person_name(), "branch_head", branch, "", joined()))
            for i in range(1, CORPORATE_MANAGERS + RETAIL_MANAGERS + 1):
                team = f"{branch}-{'corporate' if i <= CORPORATE_MANAGERS else 'retail'}"
                members.append(_Member(f"{prefix}-CM{i:02d}", self._person_name(), "customer_manager", branch, team,
                                       joined()))
            for role, tag in (("reviewer", "RV"), ("operations", "OP")):
                for i in (1, 2):
                    members.append(_Member(f"{prefix}-{tag}{i:02d}", self._person_name(), role, branch, "", joined()))
        head_office = (("product_manager", "PM", 3), ("risk_officer", "RO", 2), ("compliance_auditor", "CA", 1))
        for role, tag, count in head_office:
            for i in range(1, count + 1):
                members.append(_Member(f"HO-{tag}{i:02d}", self._person_name(), role, HEAD_OFFICE, "", joined()))
        return members

    def _join(self, member: _Member, when: datetime) -> None:
        sid = staff_id(member.code)
        if self._exists(sid):
            member.staff = self.app.repository.get(sid)
            self.report.reused["Staff"] = self.report.reused.get("Staff", 0) + 1
            return
        member.staff = Staff.join(self._ctx("human-resources", "system", when, "demo:team"), staff_code=member.code,
                                  display_name=member.name, role=member.role, branch=member.branch, team=member.team)
        self._touch(member.staff)
        self.planned += 1

    def _setup_team(self) -> None:
        rng = self.rng
        self.members = self._roster()
        for member in sorted(self.members, key=lambda m: (m.joined_at, m.code)):
            self._join(member, member.joined_at)
            if len(self.dirty) >= self.batch_size:
                self._flush()
        self.heads = {m.branch: m for m in self.members if m.role == "branch_head"}
        # Trainings every few months, and the annual AML refresher in March.
        for member in self.members:
            t = self._days_later(self.t_start, 5, 100)
            while self._push(t, "training", None, (member, "internal" if rng.random() < 0.8 else "external")):
                t = self._days_later(t, 70, 140)
        for year in range(self.t_start.year, self.t_end.year + 1):
            day = _at(_business_day(date(year, 3, 12), 0), 14 * 60)
            if self.t_start <= day:
                for member in self.members:
                    self._push(day, "training", None, (member, "aml"))
        # Quarterly reviews: bonuses and certificates; the year-end review adds a special award and a promotion.
        quarter_end = date(self.t_start.year, 3 * ((self.t_start.month - 1) // 3) + 1, 1)
        while True:
            quarter_end = _add_months(quarter_end, 3)
            review = _at(_business_day(quarter_end, 7), 16 * 60)
            previous = quarter_end - timedelta(days=1)
            if not self._push(review, "awards", None, (previous.year, (previous.month - 1) // 3 + 1), events=5):
                break
        # One customer manager leaves half-way; a successor joins two weeks before.
        if self.t_end - self.t_start >= timedelta(days=120):
            prefix, branch, _, _ = BRANCHES[rng.randrange(len(BRANCHES))]
            code = f"{prefix}-CM{rng.randint(CORPORATE_MANAGERS + 1, CORPORATE_MANAGERS + RETAIL_MANAGERS):02d}"
            leaver = next(m for m in self.members if m.code == code.lower())
            leave_at = _at(_business_day((self.t_start + (self.t_end - self.t_start) * 0.55).date(), 0), 17 * 60)
            join_at = _at(_business_day(leave_at.date() - timedelta(days=16), 0), 9 * 60 + 30)
            successor = _Member(f"{prefix}-CM09", self._person_name(), "customer_manager", branch, leaver.team, join_at)
            self.members.append(successor)
            self._push(join_at, "staff_join", None, successor)
            self._push(_at(_business_day(join_at.date(), 2), 9 * 60), "training", None, (successor, "induction"))
            self._push(leave_at, "staff_leave", None, (leaver, successor), events=1)
        # Schemes and targets: each year's are set at the planning meeting of 20 December before it.
        self._years = self._expected_years()
        for year in range(self.t_start.year, (self.t_end - timedelta(seconds=1)).year + 1):
            meeting = _at(date(year - 1, 12, 20), 10 * 60)
            if meeting < self.t_start:
                self._plan_year(meeting, year)
            else:
                self._push(meeting, "plan_year", None, year, events=self._plan_year_events())
            redefine = _at(_business_day(date(year, 4, 10), 0), 11 * 60)
            if year == self.t_start.year and self.t_start <= redefine:
                self._push(redefine, "redefine_scheme", None, year)
            revise = _at(_business_day(date(year, 7, 8), 0), 11 * 60)
            if self.t_start <= revise:
                self._push(revise, "revise_target", None, year)
        self._flush()

    def _expected_years(self) -> dict[int, dict[str, list[float]]]:
        """Per year and quarter, expected from the controller's priors (for sizing targets): ``customers``
        (new), ``accounts`` (opened), ``reporting`` (accounts with their first business figures, a month and a
        half after opening) and ``reported`` (account-months with figures). Whole calendar years are counted,
        as if the business ran the year round; the book of accounts starts empty at the start of the run."""
        rate = self._arrival_rate(0)
        first, last = self.t_start.year, (self.t_end - timedelta(seconds=1)).year
        quarters = [(y, q, date(y, 3 * q + 1, 1), _add_months(date(y, 3 * q + 1, 1), 3))
                    for y in range(first, last + 1) for q in range(4)]
        years = {y: {basis: [0.0] * 4 for basis in ("customers", "accounts", "reporting", "reported")}
                 for y in range(first, last + 1)}
        lag = timedelta(days=PRIOR_OPEN_LAG_MONTHS * DAYS_PER_MONTH)
        report_lag = timedelta(days=45)
        day = date(first, 1, 1)
        while day.year <= last:
            arrivals = rate * season(day)
            opened = day + lag
            reported = opened + report_lag
            for y, q, begin, end in quarters:
                if begin <= day < end:
                    years[y]["customers"][q] += arrivals
                if begin <= opened < end:
                    years[y]["accounts"][q] += arrivals * ACCOUNT_RATE
                if begin <= reported < end:
                    years[y]["reporting"][q] += arrivals * ACCOUNT_RATE
                if reported < end:
                    months = (end - max(reported, begin)).days / DAYS_PER_MONTH
                    years[y]["reported"][q] += arrivals * ACCOUNT_RATE * months
            day += timedelta(days=1)
        return years

    def _plan_year_events(self) -> int:
        managers = len(BRANCHES) * (CORPORATE_MANAGERS + RETAIL_MANAGERS)
        return 1 + 10 + 5 * len(BRANCHES) + 3 * 2 * len(BRANCHES) + 6 * managers

    def _plan_year(self, when: datetime, year: int) -> None:
        """The year's appraisal scheme and targets (bank, branches, teams, customer managers)."""
        rng = self.rng
        ctx = self._ctx(self.heads[BRANCHES[0][1]].code, "branch_head", when, f"demo:plan:{year}")
        weights = {name: weight for name, _, weight in SCHEME}
        if year > self.t_start.year:
            weights["new_customers"] -= 5
            weights["average_satisfaction"] += 5
        if self._exists(scheme_id(str(year))):
            self.report.reused["AppraisalScheme"] = self.report.reused.get("AppraisalScheme", 0) + 1
        else:
            scheme = AppraisalScheme.define(ctx, year=str(year), indicators=[
                {"indicator": name, "group": group, "weight": Decimal(weights[name])} for name, group, _ in SCHEME])
            self.created.add(scheme.id)
            self._touch(scheme)
        expected = self._years[year]
        customers, account_months = sum(expected["customers"]), sum(expected["reported"])
        opened = sum(expected["accounts"])

        def values(share: float, stretch: float, kinds: dict[str, float]) -> dict[str, Decimal]:
            """Targets for a unit with ``share`` of the bank's new customers, of ``kinds`` (kind -> fraction)."""
            new = customers * share * stretch
            accounts, served = opened * share * stretch, account_months * share * stretch
            deposits = sum(f * accounts * MEAN_BALANCE[k] * 0.85 for k, f in kinds.items())
            fees = sum(f * served * MEAN_FEE[k] for k, f in kinds.items())
            loans = sum(f * LOAN_SHARE[k] * MEAN_BALANCE[k] * (1.25 * accounts + (0.06 * served if k == "corporate"
                                                                                 else 0)) for k, f in kinds.items())
            return {
                "new_customers": Decimal(max(round(new), 1)),
                "new_corporate_customers": Decimal(max(round(new * kinds.get("corporate", 0)), 1)),
                "new_retail_customers": Decimal(max(round(new * kinds.get("retail", 0)), 1)),
                "accounts_opened": Decimal(max(round(accounts), 1)),
                "deposit_balance_growth": Decimal(max(int(round(deposits, -4)), 10_000)),
                "fee_income": Decimal(max(int(round(fees, -3)), 1_000)),
                "loans_disbursed": Decimal(max(int(round(loans, -4)), 10_000)),
                "visits_conducted": Decimal(max(round(new * 0.9 + served * 0.45), 1)),
                "average_satisfaction": Decimal(f"{rng.uniform(4.0, 4.3):.1f}"),
                "qualification_rate": Decimal(60),
                "good_credit_share": Decimal(75),
            }

        def quarterly(annual: Decimal, basis: str, digits: int = 0) -> dict[str, Decimal]:
            total = sum(expected[basis]) or 1.0
            return {f"{year}-Q{q + 1}": Decimal(int(round(float(annual) * expected[basis][q] / total, digits)))
                    for q in range(4)}

        def halves(annual: Decimal, basis: str) -> dict[str, Decimal]:
            total = sum(expected[basis]) or 1.0
            first_half = sum(expected[basis][:2]) / total
            return {f"{year}-H1": Decimal(int(round(float(annual) * first_half, -4))),
                    f"{year}-H2": Decimal(int(round(float(annual) * (1 - first_half), -4)))}

        units: list[tuple[str, str, dict[str, Decimal], tuple[str, ...]]] = []
        both = {"retail": 0.8, "corporate": 0.2}
        units.append(("bank", "bank", values(1.0, rng.uniform(1.0, 1.15), both),
                      ("new_customers", "new_corporate_customers", "new_retail_customers", "accounts_opened",
                       "deposit_balance_growth", "fee_income", "loans_disbursed", "average_satisfaction",
                       "qualification_rate", "good_credit_share")))
        for _, branch, _, share in BRANCHES:
            units.append(("branch", branch, values(share, rng.uniform(1.0, 1.2), both),
                          ("new_customers", "accounts_opened", "deposit_balance_growth", "fee_income",
                           "average_satisfaction")))
            for kind, kind_share, size in (("corporate", 0.2, CORPORATE_MANAGERS), ("retail", 0.8, RETAIL_MANAGERS)):
                units.append(("team", f"{branch}-{kind}", values(share * kind_share, rng.uniform(1.0, 1.2), {kind: 1}),
                              ("new_customers", "accounts_opened", "deposit_balance_growth")))
                for member in self.members:
                    if member.team == f"{branch}-{kind}" and member.active:
                        units.append(("person", member.code,
                                      values(share * kind_share / size, rng.uniform(0.95, 1.25), {kind: 1}),
                                      ("new_customers", "accounts_opened", "deposit_balance_growth", "fee_income",
                                       "average_satisfaction", "visits_conducted")))
        for unit_type, unit_id, figures, indicators in units:
            for indicator in indicators:
                if self._exists(target_id(str(year), unit_type, unit_id, indicator)):
                    self.report.reused["Target"] = self.report.reused.get("Target", 0) + 1
                    continue
                checkpoints: dict[str, Decimal] = {}
                if unit_type in ("bank", "branch") and indicator == "new_customers":
                    checkpoints = quarterly(figures[indicator], "customers")
                elif unit_type in ("bank", "branch") and indicator == "accounts_opened":
                    checkpoints = quarterly(figures[indicator], "accounts")
                elif unit_type in ("bank", "branch") and indicator in ("fee_income", "loans_disbursed"):
                    checkpoints = quarterly(figures[indicator], "reported", -3)
                elif unit_type in ("bank", "branch") and indicator == "deposit_balance_growth":
                    checkpoints = {**quarterly(figures[indicator], "reporting", -4),
                                   **halves(figures[indicator], "reporting")}
                target = Target.set(ctx, year=str(year), unit_type=unit_type, unit_id=unit_id, indicator=indicator,
                                    annual=figures[indicator], checkpoints=checkpoints)
                self.created.add(target.id)
                self._touch(target)
                if len(self.dirty) >= self.batch_size:
                    self._flush()

    def _do_plan_year(self, when: datetime, _: Any, year: int) -> None:
        self._plan_year(when, year)

    def _do_redefine_scheme(self, when: datetime, _: Any, year: int) -> None:
        sid = scheme_id(str(year))
        if sid not in self.created:
            return
        scheme = self.app.repository.get(sid)
        weights = {i["indicator"]: i["weight"] for i in scheme.indicators}
        weights["accounts_opened"] -= 5
        weights["average_satisfaction"] += 5
        scheme.redefine(self._ctx(self.heads[BRANCHES[0][1]].code, "branch_head", when, f"demo:plan:{year}"),
                        indicators=[{"indicator": n, "group": g, "weight": weights[n]} for n, g, _ in SCHEME],
                        reason="consumer-protection guidance: more weight on service quality")
        self._touch(scheme)

    def _do_revise_target(self, when: datetime, _: Any, year: int) -> None:
        branch = BRANCHES[self.rng.randrange(len(BRANCHES))][1]
        tid = target_id(str(year), "branch", branch, "new_customers")
        if tid not in self.created:
            return
        target = self.app.repository.get(tid)
        factor = self.rng.choice((Decimal("0.9"), Decimal("1.1")))
        annual = (target.annual * factor).quantize(Decimal(1))
        checkpoints = {k: (v * factor).quantize(Decimal(1)) for k, v in target.checkpoints.items()}
        reason = ("mid-year review: raised after a strong first half" if factor > 1
                  else "mid-year review: lowered after the industrial park's slowdown")
        target.revise(self._ctx(self.heads[branch].code, "branch_head", when, f"demo:plan:{year}"),
                      annual=annual, checkpoints=checkpoints, reason=reason)
        self._touch(target)

    def _do_training(self, when: datetime, _: Any, arg: tuple[_Member, str]) -> None:
        member, kind = arg
        if not member.active:
            return
        assert member.staff is not None
        rng = self.rng
        if kind == "aml":
            kind, topic, hours = "internal", "anti-money-laundering and KYC annual refresher", Decimal(4)
        elif kind == "induction":
            kind, topic, hours = "internal", "induction: acquisition process and compliance", Decimal(16)
        elif kind == "external":
            topic, hours = rng.choice(EXTERNAL_TRAININGS), Decimal(rng.choice((8, 12, 16, 24)))
        else:
            topic, hours = rng.choice(TRAININGS[member.role]), Decimal(rng.choice((2, 3, 4, 6, 8)))
        member.staff.record_training(self._ctx("human-resources", "system", when, "demo:team"),
                                     kind=kind, topic=topic, hours=hours)
        self._touch(member.staff)

    def _do_awards(self, when: datetime, _: Any, arg: tuple[int, int]) -> None:
        year, quarter = arg
        period = f"{year}-Q{quarter}"
        for _, branch, _, _ in BRANCHES:
            head = self.heads[branch]
            ctx = self._ctx(head.code, "branch_head", when, f"demo:review:{period}")
            managers = [m for m in self.members if m.branch == branch and m.role == "customer_manager" and m.active]
            best = max(managers, key=lambda m: (self.stats["accounts", m.code, period], m.code), default=None)
            if best is not None and self.stats["accounts", best.code, period]:
                n = self.stats["accounts", best.code, period]
                assert best.staff is not None
                best.staff.grant_award(ctx, kind="bonus", amount=Decimal(min(2000 + 500 * n, 20000)), currency=CURRENCY,
                                       reason=f"most accounts opened in the branch in {period} ({n})")
                self._touch(best.staff)
            rated = [m for m in managers if self.stats["satisfaction_n", m.code, period] >= 3]
            top = max(rated, key=lambda m: (self.stats["satisfaction", m.code, period]
                                            / self.stats["satisfaction_n", m.code, period], m.code), default=None)
            if top is not None and top.staff is not None:
                mean = self.stats["satisfaction", top.code, period] / self.stats["satisfaction_n", top.code, period]
                top.staff.grant_award(ctx, kind="certificate",
                                      reason=f"best follow-up satisfaction in the branch in {period} ({mean:.2f})")
                self._touch(top.staff)
        if quarter == 4:
            ctx = self._ctx(self.heads[BRANCHES[0][1]].code, "branch_head", when, f"demo:review:{year}")
            managers = [m for m in self.members if m.role == "customer_manager" and m.active]
            referrer = max(managers, key=lambda m: (self.stats["referrals", m.code, str(year)], m.code), default=None)
            referred = self.stats["referrals", referrer.code, str(year)] if referrer is not None else 0
            if referrer is not None and referrer.staff is not None and referred:
                referrer.staff.grant_award(ctx, kind="special_award", reason=(
                    f"new method: referral programme with existing customers (二次開發和推薦), "
                    f"{referred} referred customers in {year}"))
                self._touch(referrer.staff)
            yearly = {m.code: sum(self.stats["accounts", m.code, f"{year}-Q{q}"] for q in range(1, 5))
                      for m in managers}
            promoted = max(managers, key=lambda m: (yearly[m.code], m.code), default=None)
            if promoted is not None and promoted.staff is not None and yearly[promoted.code]:
                promoted.staff.grant_award(ctx, kind="promotion", reason=(
                    f"outstanding acquisition results in {year}: {yearly[promoted.code]} accounts"))
                self._touch(promoted.staff)

    def _do_staff_join(self, when: datetime, _: Any, member: _Member) -> None:
        self._join(member, when)

    def _do_staff_leave(self, when: datetime, _: Any, arg: tuple[_Member, _Member]) -> None:
        leaver, successor = arg
        if not leaver.active or not successor.active:
            return
        assert leaver.staff is not None
        ctx = self._ctx(self.heads[leaver.branch].code, "branch_head", when, "demo:team")
        for journey in list(self.active.values()):
            customer = journey.customer
            if customer is not None and customer.manager_id == leaver.code:
                customer.reassign_manager(ctx, manager_id=successor.code, successor=successor.as_successor(),
                                          reason=f"customer manager {leaver.code} left the bank; portfolio handed over")
                self._touch(customer)
        leaver.staff.leave(ctx, reason=f"resigned; portfolio handed over to {successor.code}")
        self._touch(leaver.staff)

    # ------------------------------------------------------------------ staff lookups

    def _manager_for(self, branch: str, kind: str, exclude: str | None = None) -> _Member | None:
        team = f"{branch}-{kind}"
        managers = [m for m in self.members if m.team == team and m.active and m.code != exclude]
        return self.rng.choice(managers) if managers else None

    def _staff(self, role: str, branch: str = HEAD_OFFICE) -> _Member:
        return self.rng.choice([m for m in self.members if m.role == role and m.branch == branch and m.active])

    # ------------------------------------------------------------------ arrivals (the controller)

    def _arrival_rate(self, i: int) -> float:
        """New customers per unit of season weight from day ``i`` on, so that planned events reach the target."""
        remaining = self.target - self.planned
        if remaining <= 0 or i >= len(self._days):
            return 0.0
        est = self._est
        lifecycle = est["lifecycle"] / est["n"]
        service = est["service"] / est["n"]
        lag = est["lag"] / est["openers"]
        # Days j >= i with months left above the lag contribute service x (months left - lag).
        cut = len(self._days)
        while cut > i and self._months_left[cut - 1] <= lag:
            cut -= 1
        k = max(cut, i)
        per_unit = lifecycle * self._sf[i] + service * ((self._s1[i] - self._s1[k]) - lag * (self._s0[i] - self._s0[k]))
        return remaining / per_unit if per_unit > 0 else 0.0

    def _poisson(self, mean: float) -> int:
        if mean <= 0:
            return 0
        if mean > 40:
            return max(0, round(self.rng.gauss(mean, math.sqrt(mean))))
        limit, k, p = math.exp(-mean), 0, self.rng.random()
        while p > limit:
            k += 1
            p *= self.rng.random()
        return k

    def _do_day(self, when: datetime, _: Any, i: int) -> None:
        for _ in range(self._poisson(self._arrival_rate(i) * self._season[i])):
            self._arrive(self._days[i])
        if i + 1 < len(self._days):
            self._push(_at(self._days[i + 1], 0), "day", None, i + 1, events=0)

    # ------------------------------------------------------------------ a new customer: profile

    def _arrive(self, day: date) -> None:
        rng = self.rng
        self.journeys += 1
        j = _Journey(self.journeys)
        j.kind = "corporate" if rng.random() < 0.2 else "retail"
        j.channel = _pick(rng, CHANNEL_MIX[j.kind])
        j.segment = _pick(rng, SEGMENT_MIX[j.kind])
        j.branch = _pick(rng, BRANCH_MIX)
        manager = self._manager_for(j.branch, j.kind)
        if manager is None:
            return
        j.manager = manager.code
        if j.channel == "referral" and self.referrers:
            j.source_detail = f"referred by existing customer {rng.choice(self.referrers)}"
        else:
            j.source_detail = rng.choice(SOURCES[j.channel])
        _, median, key_probability = SEGMENTS[j.kind][j.segment]
        j.target_balance = median * math.exp(rng.gauss(0, BALANCE_SIGMA))
        j.key = rng.random() < key_probability
        if j.channel == "online":
            j.registered_at = _at(day, rng.randint(8 * 60, 22 * 60 + 59))
        else:
            j.registered_at = _at(_business_day(day, 0), rng.randint(9 * 60, 17 * 60 + 29))
        if j.kind == "retail":
            self._retail_facts(j)
        else:
            self._corporate_facts(j)
        self.active[j.number] = j
        self._plan_journey(j)

    def _phone(self) -> str:
        return f"1{self.rng.choice('3578')}{self.rng.randint(0, 9)}****{self.rng.randint(0, 9999):04d}"

    def _address(self, branch: str) -> str:
        return f"{self.rng.choice(DISTRICTS[branch])}{self.rng.randint(1, 999)}號"

    def _retail_facts(self, j: _Journey) -> None:
        rng = self.rng
        j.name = j.signatory = self._person_name()
        low, high = AGES[j.segment]
        age = rng.randint(low, high)
        job = next(_pick(rng, table) for limit, table in JOBS_BY_AGE if age <= limit)
        income = j.target_balance / rng.uniform(3, 12) if j.segment != "private_banking" else j.target_balance / 40
        balance = j.target_balance * rng.uniform(0.05, 0.6) * (-0.05 if rng.random() < 0.02 else 1)
        products = list(dict.fromkeys(rng.choices(list(PRODUCTS[j.segment]), k=2)))
        j.facts = {
            "basic": {"name": j.name, "gender": rng.choice(("female", "male")), "age": age,
                      "birth_year": self.t_start.year - age, "job": job,
                      "marital": rng.choice(("married", "married", "single", "divorced")),
                      "education": rng.choice(("secondary", "tertiary", "tertiary", "primary")),
                      "contact": self._phone(), "address": self._address(j.branch)},
            "financial": {"monthly_income": _money(income), "balance": _money(balance) if balance >= 0
                          else -_money(-balance), "currency": CURRENCY,
                          "assets": _money(j.target_balance * rng.uniform(1, 6)),
                          "liabilities": _money(j.target_balance * rng.uniform(0, 2)),
                          "housing_loan": rng.random() < (0.1 if j.segment == "senior" else 0.3),
                          "personal_loan": rng.random() < 0.12},
            "business": {"employer_industry": rng.choice(list(INDUSTRIES)), "years_with_employer": rng.randint(0, 25)},
            "needs": {"products_of_interest": products,
                      "expected_return_pct": Decimal(rng.choice(("1.8", "2.5", "3.0", "4.0"))),
                      "risk_appetite": rng.choice(("conservative", "balanced", "balanced", "growth")),
                      "preferred_channel": rng.choice(("mobile", "branch", "phone"))},
        }
        result = _pick(rng, _table({"no_default": 76, "unknown": 16, "in_default": 8}))
        j.credit = ("pboc_credit_reference_center", result, None)

    def _corporate_facts(self, j: _Journey) -> None:
        rng = self.rng
        industry = rng.choice(list(INDUSTRIES))
        word, scope = INDUSTRIES[industry]
        j.name = f"{CITY[j.branch]}{rng.choice(BRANDS)}{word}有限公司"
        j.signatory = self._person_name()
        revenue = j.target_balance * rng.uniform(4, 15)
        employees = {"micro_enterprise": (3, 20), "sme": (20, 300), "mid_corporate": (300, 2000),
                     "large_corporate": (2000, 20000)}[j.segment]
        products = list(dict.fromkeys(rng.choices(list(PRODUCTS[j.segment]), k=3)))
        j.facts = {
            "basic": {"name": j.name, "unified_social_credit_code": f"9131{rng.randint(0, 10**14 - 1):014d}",
                      "legal_representative": j.signatory, "established_year": self.t_start.year - rng.randint(1, 30),
                      "registered_capital": _money(round(revenue * rng.uniform(0.05, 0.3), -4)),
                      "contact": self._phone(), "address": self._address(j.branch)},
            "financial": {"annual_revenue": _money(round(revenue, -3)),
                          "total_assets": _money(revenue * rng.uniform(0.8, 2)),
                          "total_liabilities": _money(revenue * rng.uniform(0.2, 1.2)),
                          "balance": _money(j.target_balance * rng.uniform(0.1, 0.8)), "currency": CURRENCY},
            "business": {"industry": industry, "business_scope": scope, "employees": rng.randint(*employees),
                         "business_scale": j.segment.split("_")[0]},
            "needs": {"products_of_interest": products,
                      "financing_need": _money(round(revenue * rng.choice((0, 0, 0.1, 0.2)), -4)),
                      "service_expectations": rng.choice(("one relationship manager for all subsidiaries",
                                                          "fast loan decisions", "online cash management"))},
        }
        result = _pick(rng, _table({"no_default": 82, "unknown": 10, "in_default": 8}))
        if rng.random() < 0.55:
            rating = (None if result == "unknown" else rng.choice(("B", "CCC", "C")) if result == "in_default"
                      else RATINGS[min(len(RATINGS) - 1, int(abs(rng.gauss(0, 2.5))) + (0 if j.key else 2))])
            j.credit = ("rating_agency", result, rating)
        else:
            j.credit = ("pboc_credit_reference_center", result, None)

    # ------------------------------------------------------------------ a new customer: the plan

    def _plan_journey(self, j: _Journey) -> None:
        """Plan the customer's acquisition steps (decided now, executed in business-time order)."""
        rng = self.rng
        before = self.planned
        t = j.registered_at
        self._push(t, "register", j)
        groups = ["basic", "financial"]
        if j.kind == "corporate" or rng.random() < 0.7:
            groups.append("business")
        needs_known = rng.random() < (0.5 if j.kind == "corporate" else 0.45)
        if needs_known:
            groups.append("needs")
        for n, group in enumerate(groups, start=1):
            self._push(t + timedelta(minutes=2 * n), "facts", j, group)
        t = self._later(t, 0, 1)
        self._push(t, "credit", j)
        t += timedelta(minutes=5)
        self._push(t, "screen", j)
        inputs = {"credit_standing": j.credit[1], "age": j.facts["basic"].get("age"),
                  "job": j.facts["basic"].get("job"), "balance": j.facts["financial"].get("balance"),
                  "housing_loan": j.facts["financial"].get("housing_loan"),
                  "personal_loan": j.facts["financial"].get("personal_loan")}
        result = screening.score(inputs)
        opened: datetime | None = None
        if rng.random() < 0.95:  # the rest wait in the reviewers' queue
            t = self._later(t, 1, 3)
            qualify = {"pass": 0.66, "refer": 0.40, "decline": 0.0}[result.outcome]
            if rng.random() < qualify:
                self._push(t, "review", j, ("qualified", rng.choice(QUALIFY_REASONS)))
                opened = self._plan_qualified(j, t, needs_known)
            else:
                if result.outcome == "decline":
                    worst = min((k for k in result.contributions if k != "base"), key=result.contributions.get)
                    reason = f"declined by the screening model (score {result.score}; weakest factor {worst})"
                else:
                    reason = rng.choice(REJECT_REASONS[j.kind])
                self._push(t, "review", j, ("rejected", reason))
        months = 0.0 if opened is None else (self.t_end - opened).days / DAYS_PER_MONTH
        if months > 0.4:
            self.planned += SERVICE_START_EVENTS
        est = self._est
        est["n"] += 1
        est["lifecycle"] += (self.planned - before) / lifecycle_share(
            (self.t_end - j.registered_at).days / DAYS_PER_MONTH)
        if opened is not None:
            rate = self._service_rate(j)
            self.planned += rate * months
            est["service"] += rate
            est["openers"] += 1
            est["lag"] += (opened - j.registered_at).days / DAYS_PER_MONTH

    def _service_rate(self, j: _Journey) -> float:
        """Expected service events per month of account life: figures, follow-up cycles (a visit with its
        steps, or a survey), and customers who become key later (measured: within a few % of the runs)."""
        interval = 30 if j.key else 50 if j.kind == "corporate" else 90
        return 1.0 + DAYS_PER_MONTH / interval * (3.35 if j.key else 2.75) + 0.15

    def _plan_qualified(self, j: _Journey, t: datetime, needs_known: bool) -> datetime | None:
        rng = self.rng
        if j.key:
            self._push(self._later(t, 0, 2), "mark_key", j)
        if rng.random() < 0.06:
            self._plan_risk(j, self._days_later(t, 5, 200), "customer")
        if rng.random() < 0.04:
            self._push(self._days_later(t, 20, 250), "reassign", j)
        if j.kind == "retail" and j.segment in DIRECT_SEGMENTS and rng.random() < 0.35:
            path = "direct"
        else:
            path = "lost" if rng.random() < 0.12 else "proposal"
        if path == "direct":
            visits = 0 if rng.random() < 0.5 else 1
        elif j.kind == "corporate":
            visits = rng.randint(2, 4)
        else:
            visits = _pick(rng, _table({1: 60, 2: 30, 3: 10}))
        cursor, conducted = t, 0
        while visits > 0:
            cursor, done = self._plan_visit(j, cursor, "acquisition")
            if done:
                visits -= 1
                conducted += 1
                if conducted == 1 and not needs_known:
                    self._push(cursor + timedelta(hours=2), "facts", j, "needs")
        if path == "lost":
            return None
        if path == "direct":
            return self._plan_account(j, cursor)
        outcome, cursor = self._plan_proposal(j, cursor)
        if outcome != "accept":
            return None
        j.via_contract = True
        cursor = self._plan_contract(j, cursor)
        return self._plan_account(j, cursor)

    def _plan_visit(self, j: _Journey, cursor: datetime, kind: str) -> tuple[datetime, bool]:
        """Plan one visit; ``(time of its last step, conducted?)``."""
        rng = self.rng
        key = j.next_key("visit")
        planned = self._later(cursor, 0, 2)
        scheduled = _at(_business_day(planned.date(), rng.randint(2, 7)), rng.choice(SLOTS))
        if j.kind == "corporate":
            method = _pick(rng, _table({"in_person": 80, "video": 15, "phone": 5}))
        else:
            method = _pick(rng, _table({"phone": 45, "in_person": 40, "video": 15}))
        with_product_manager = j.kind == "corporate" and method == "in_person" and rng.random() < 0.4
        self._push(planned, "visit_plan", j, (key, kind, method, scheduled, rng.choice(VISIT_PURPOSES[j.kind]),
                                              with_product_manager))
        last = planned
        if rng.random() < 0.10:
            last = self._between(last, scheduled)
            scheduled = _at(_business_day(scheduled.date(), rng.randint(2, 5)), rng.choice(SLOTS))
            self._push(last, "visit_reschedule", j, (key, scheduled, rng.choice(RESCHEDULE_REASONS)))
        if rng.random() < 0.04:
            last = self._between(last, scheduled)
            self._push(last, "visit_cancel", j, (key, rng.choice(CANCEL_REASONS)))
            return last, False
        if j.key or rng.random() < 0.25:
            last = self._between(last, scheduled)
            self._push(last, "visit_prepare", j, key)
        feedback = rng.random() < 0.6
        duration = {"phone": (300, 1200), "video": (900, 2700), "in_person": (1800, 5400)}[method]
        self._push(scheduled, "visit_conduct", j, (key, rng.randint(*duration), not feedback))
        if feedback:
            self._push(scheduled + timedelta(minutes=rng.randint(60, 240)), "visit_feedback", j, key)
        return scheduled, True

    def _plan_proposal(self, j: _Journey, cursor: datetime) -> tuple[str, datetime]:
        rng = self.rng
        t = self._later(cursor, 1, 3)
        self._push(t, "proposal_draft", j)
        if rng.random() < 0.15:
            t = self._later(t, 0, 1)
            self._push(t, "proposal_revise", j, REVISE_REASONS[0])
        t = self._later(t, 0, 1)
        self._push(t, "proposal_submit", j)
        if rng.random() < 0.15:
            t = self._later(t, 1, 3)
            self._push(t, "proposal_return", j, rng.choice(RETURN_PROPOSAL_REASONS))
            t = self._later(t, 1, 2)
            self._push(t, "proposal_revise", j, REVISE_REASONS[3])
            t = self._later(t, 0, 1)
            self._push(t, "proposal_submit", j)
        t = self._later(t, 1, 3)
        self._push(t, "proposal_approve", j)
        t = self._later(t, 1, 4)
        self._push(t, "proposal_present", j)
        if rng.random() < 0.15:  # counter-offer: a new revision, approved again
            t = self._later(t, 2, 5)
            self._push(t, "proposal_revise", j, rng.choice(REVISE_REASONS[1:3]))
            t = self._later(t, 0, 1)
            self._push(t, "proposal_submit", j)
            t = self._later(t, 1, 2)
            self._push(t, "proposal_approve", j)
            t = self._later(t, 1, 3)
            self._push(t, "proposal_present", j)
        outcome = _pick(rng, _table({"accept": 70, "decline": 20, "withdraw": 10}))
        t = self._later(t, 2, 10)
        reason = {"accept": None, "decline": rng.choice(DECLINE_REASONS), "withdraw": rng.choice(WITHDRAW_REASONS)}
        self._push(t, f"proposal_{outcome}", j, reason[outcome])
        return outcome, t

    def _plan_contract(self, j: _Journey, cursor: datetime) -> datetime:
        rng = self.rng
        t = self._later(cursor, 1, 3)
        self._push(t, "contract_draft", j)
        if rng.random() < 0.10:
            self._plan_risk(j, self._later(t, 1, 10), "contract")
        t = self._later(t, 1, 3)
        findings = rng.sample(CLAUSE_FINDINGS, rng.choice((1, 1, 2))) if rng.random() < 0.25 else []
        self._push(t, "contract_review", j, [{"clause": c, "finding": f} for c, f in findings])
        for number in range(1, len(findings) + 1):
            t = self._later(t, 1, 2)
            self._push(t, "contract_resolve", j, (number, rng.choice(RESOLUTIONS)))
        if findings and rng.random() < 0.4:
            t = self._later(t, 0, 1)
            self._push(t, "contract_review", j, [])
        t = self._later(t, 1, 2)
        self._push(t, "contract_approve", j)
        t = self._later(t, 1, 5)
        self._push(t, "contract_sign", j, rng.random() < 0.02)
        return t

    def _plan_account(self, j: _Journey, cursor: datetime) -> datetime | None:
        """Plan application, document review(s), opening, products and the start of service."""
        rng = self.rng
        t = self._later(cursor, 0, 3)
        if not self._push(t, "account_apply", j, None):
            return None
        returns = 0
        while rng.random() < (0.15 if returns == 0 else 0.05):
            returns += 1
            t = self._later(t, 1, 1)
            self._push(t, "documents_review", j, rng.choice(RETURN_REASONS[j.kind]))
            t = self._later(t, 2, 7)
            self._push(t, "account_apply", j, "re-applied with corrected documents")
        t = self._later(t, 1, 1)
        self._push(t, "documents_review", j, None)
        t = self._later(t, 0, 1)
        if not self._push(t, "account_open", j):
            return None
        self._push(t + timedelta(minutes=10), "products_sign", j)
        self._push(t + timedelta(minutes=15), "serve", j, events=0)
        return t

    def _plan_risk(self, j: _Journey, t: datetime, subject: str) -> None:
        """Plan a risk case from identification to (usually) closure (§4)."""
        rng = self.rng
        key = j.next_key("risk")
        category = _pick(rng, RISK_CATEGORIES[subject])
        if not self._push(t, "risk_identify", j, (key, subject, category, rng.choice(RISK_DESCRIPTIONS[category])),
                          events=2):
            return
        severity = _pick(rng, _table({"low": 35, "medium": 40, "high": 25}))
        low, high = {"low": (5, 40), "medium": (30, 65), "high": (45, 75)}[severity]
        scores = {name: rng.randint(low, high) for name in RISK_INDICATORS[category]}
        if severity == "high":
            scores[rng.choice(RISK_INDICATORS[category])] = rng.randint(80, 95)
        level = assess_level(scores)
        t = self._later(t, 1, 3)
        self._push(t, "risk_assess", j, (key, scores))
        response = _pick(rng, RESPONSES[level])
        t = self._later(t, 1, 2)
        self._push(t, "risk_respond", j, (key, response, MEASURES[response],
                                          f"{level} {category} risk: {response} (measures §4)"))
        indicator, threshold, direction, value, step = RISK_READINGS[category]
        worse = 1 if direction == "above" else -1
        was_beyond = False
        for _ in range(rng.randint(1, 5)):
            t = self._days_later(t, 20, 35)
            value = max(0.0, value + worse * rng.uniform(-0.6, 1.4) * step)
            reading = Decimal(f"{value:.1f}")
            beyond = is_beyond(reading, threshold, direction)
            self._push(t, "risk_reading", j, (key, indicator, reading, threshold, direction),
                       events=1 + (beyond and not was_beyond))
            was_beyond = beyond
        if rng.random() < 0.75:
            t = self._later(t, 5, 20)
            actions = rng.sample(DISPOSAL_ACTIONS, 2)
            self._push(t, "risk_dispose", j, (key, actions, f"{category} risk investigated: {actions[0]}"))
            if rng.random() < 0.85:
                t = self._later(t, 1, 5)
                reason = ("investigation cleared the customer" if response == "avoid"
                          else "risk mitigated; monitoring back to routine")
                self._push(t, "risk_close", j, (key, reason), events=2)

    # ------------------------------------------------------------------ customer steps (§2.1, §2.2)

    def _manager_ctx(self, j: _Journey, when: datetime) -> Context:
        assert j.customer is not None
        return self._ctx(j.customer.manager_id, "customer_manager", when, j.cause)

    def _do_register(self, when: datetime, j: _Journey, _: Any) -> None:
        customer_id = self._new_id("customer")
        j.cause = f"demo:{self.seed}:customer:{self.counters['customer']}"
        if j.channel == "online":
            ctx = self._ctx("mobile-banking", "system", when, j.cause)
        else:
            ctx = self._ctx(j.manager, "customer_manager", when, j.cause)
        j.customer = Customer.register(ctx, kind=j.kind, acquisition_channel=j.channel, source_detail=j.source_detail,
                                       segment=j.segment, manager_id=j.manager, branch=j.branch, display_name=j.name,
                                       customer_id=customer_id)
        self._touch(j.customer)
        if j.channel == "referral":
            self.stats["referrals", j.manager, str(when.year)] += 1

    def _do_facts(self, when: datetime, j: _Journey, group: str) -> None:
        assert j.customer is not None
        actor = self._manager_ctx(j, when) if group == "needs" or j.channel != "online" else \
            self._ctx("mobile-banking", "system", when, j.cause)
        j.customer.record_facts(actor, group=group, facts=j.facts[group])
        self._touch(j.customer)

    def _do_credit(self, when: datetime, j: _Journey, _: Any) -> None:
        assert j.customer is not None
        source, result, rating = j.credit
        j.customer.record_credit_standing(self._ctx("credit-bureau-gateway", "system", when, j.cause),
                                          source=source, result=result, rating=rating)
        self._touch(j.customer)

    def _do_screen(self, when: datetime, j: _Journey, _: Any) -> None:
        customer = j.customer
        assert customer is not None
        result = screening.score(screening_inputs(customer))
        customer.record_screening(self._ctx("screening-model", "system", when, j.cause), model_name=result.model_name,
                                  model_version=result.model_version, inputs=result.inputs, score=result.score,
                                  contributions=result.contributions, outcome=result.outcome)
        self._touch(customer)

    def _do_review(self, when: datetime, j: _Journey, arg: tuple[str, str]) -> None:
        assert j.customer is not None
        decision, reason = arg
        reviewer = self._staff("reviewer", j.branch)
        j.customer.review(self._ctx(reviewer.code, "reviewer", when, j.cause), decision=decision, reason=reason)
        self._touch(j.customer)

    def _do_mark_key(self, when: datetime, j: _Journey, _: Any) -> None:
        customer = j.customer
        assert customer is not None
        if customer.is_key:
            return
        head = self.heads[j.branch]
        reason = (f"{j.segment.replace('_', ' ')} customer; "
                  f"expected balance about CNY {round(j.target_balance, -4):,.0f}")
        customer.mark_key_customer(self._ctx(head.code, "branch_head", when, j.cause), reason=reason)
        self._touch(customer)

    def _do_reassign(self, when: datetime, j: _Journey, _: Any) -> None:
        customer = j.customer
        if customer is None or (j.pending == 0 and not j.serving):
            return
        successor = self._manager_for(j.branch, j.kind, exclude=customer.manager_id)
        if successor is None:
            return
        reason = self.rng.choice(("workload balancing in the team", "customer moved to another district",
                                  "customer asked for a manager who speaks Cantonese"
                                  if j.kind == "retail" else "group companies consolidated under one manager"))
        customer.reassign_manager(self._ctx(self.heads[j.branch].code, "branch_head", when, j.cause),
                                  manager_id=successor.code, successor=successor.as_successor(), reason=reason)
        self._touch(customer)

    # ------------------------------------------------------------------ visits (§2.3)

    def _do_visit_plan(self, when: datetime, j: _Journey, arg: tuple) -> None:
        key, kind, method, scheduled, purpose, with_product_manager = arg
        customer = j.customer
        assert customer is not None
        if kind == "acquisition" and j.blocking:
            return
        staff = [customer.manager_id]
        if with_product_manager:
            staff.append(self._staff("product_manager").code)
        visit = Visit.plan(self._manager_ctx(j, when), customer_id=customer.id, purpose=purpose,
                           scheduled_at=scheduled, staff=staff, method=method, kind=kind,
                           visit_id=self._new_id("visit"))
        j.objs[key] = visit
        self._touch(visit)

    def _open_visit(self, j: _Journey, key: str) -> Visit | None:
        visit = j.objs.get(key)
        return visit if isinstance(visit, Visit) and visit.status in (PLANNED, PREPARED) else None

    def _prepare(self, j: _Journey, visit: Visit, when: datetime) -> None:
        assert j.customer is not None
        rng = self.rng
        visit.prepare(self._manager_ctx(j, when),
                      background=f"{j.segment.replace('_', ' ')} customer via {j.channel}; "
                                 f"interested in {', '.join(j.facts['needs']['products_of_interest'])}",
                      materials=rng.sample(["product brochure", "pricing sheet", "competitor comparison",
                                            "case study of a similar customer", "account-opening checklist"], 2),
                      talking_points=rng.sample(["fees and waivers", "digital banking", "relationship benefits",
                                                 "financing options", "data protection"], 2))
        self._touch(visit)

    def _do_visit_prepare(self, when: datetime, j: _Journey, key: str) -> None:
        visit = self._open_visit(j, key)
        if visit is not None:
            self._prepare(j, visit, when)

    def _do_visit_reschedule(self, when: datetime, j: _Journey, arg: tuple) -> None:
        key, scheduled, reason = arg
        visit = self._open_visit(j, key)
        if visit is not None:
            visit.reschedule(self._manager_ctx(j, when), scheduled_at=scheduled, reason=reason)
            self._touch(visit)

    def _do_visit_cancel(self, when: datetime, j: _Journey, arg: tuple) -> None:
        key, reason = arg
        visit = self._open_visit(j, key)
        if visit is not None:
            visit.cancel(self._manager_ctx(j, when), reason=reason)
            self._touch(visit)
        j.objs.pop(key, None)

    def _do_visit_conduct(self, when: datetime, j: _Journey, arg: tuple) -> None:
        key, duration, last = arg
        visit = self._open_visit(j, key)
        customer = j.customer
        assert customer is not None
        if visit is None:
            j.objs.pop(key, None)
            return
        if customer.is_key and visit.preparation is None:  # the customer became key after the visit was planned
            self._prepare(j, visit, when - timedelta(minutes=30))
        rng = self.rng
        if visit.kind == "acquisition":
            outcome, needs, next_steps = (rng.choice(VISIT_OUTCOMES), rng.choice(NEEDS_LEARNED[j.kind]),
                                          rng.choice(NEXT_STEPS))
        else:
            outcome, needs, next_steps = ("feedback collected; service plan reviewed",
                                          rng.choice(NEEDS_LEARNED[j.kind]), "adjust the service plan")
        visit.conduct(self._manager_ctx(j, when), outcome=outcome, needs_learned=needs, next_steps=next_steps,
                      duration_seconds=duration, customer_is_key=customer.is_key)
        self._touch(visit)
        if last:
            j.objs.pop(key, None)

    def _do_visit_feedback(self, when: datetime, j: _Journey, key: str) -> None:
        visit = j.objs.pop(key, None)
        if not isinstance(visit, Visit) or visit.status != CONDUCTED:
            return
        departments = self.rng.sample(DEPARTMENTS, self.rng.choice((1, 1, 2)))
        visit.route_feedback(self._manager_ctx(j, when), departments=departments,
                             feedback=f"{visit.outcome}; customer's needs passed to {', '.join(departments)}")
        self._touch(visit)

    # ------------------------------------------------------------------ proposals and contracts (§2.4)

    def _pricing(self, product: str) -> dict[str, Any]:
        rng = self.rng
        if product in ("term_deposit", "pension_account"):
            return {"rate_pct": Decimal(rng.choice(("1.65", "1.75", "1.85", "1.95"))),
                    "term_months": rng.choice((12, 24, 36))}
        if product in ("wealth_management", "fund_investment", "family_trust"):
            return {"subscription_fee_discount_pct": rng.choice((50, 70, 80)),
                    "minimum_amount": rng.choice((10_000, 50_000, 1_000_000))}
        if product in LOAN_PRODUCTS:
            return {"lpr_spread_bp": rng.choice((-20, 0, 15, 35, 60)),
                    "term_months": rng.choice((12, 36, 60, 360 if product == "mortgage" else 24))}
        return {"fee_waiver_months": rng.choice((3, 6, 12))}

    def _do_proposal_draft(self, when: datetime, j: _Journey, _: Any) -> None:
        customer = j.customer
        assert customer is not None
        if j.blocking:
            return
        rng = self.rng
        wanted = j.facts["needs"]["products_of_interest"]
        extra = rng.choices(list(PRODUCTS[j.segment]), weights=list(PRODUCTS[j.segment].values()), k=rng.randint(0, 2))
        products = list(dict.fromkeys([*wanted[:2], *extra]))
        proposal = Proposal.draft(
            self._manager_ctx(j, when), customer_id=customer.id, products=products,
            pricing_terms={"currency": CURRENCY, "valid_days": 30, "products": {p: self._pricing(p) for p in products}},
            rights_and_obligations=(
                f"The bank provides {', '.join(products)} at the agreed pricing for 12 months and protects the "
                "customer's personal information; the customer provides true and complete KYC documents and keeps "
                "the account active."),
            proposal_id=self._new_id("proposal"))
        j.objs["proposal"] = proposal
        self._touch(proposal)

    def _proposal(self, j: _Journey, *statuses: str) -> Proposal | None:
        proposal = j.objs.get("proposal")
        return proposal if isinstance(proposal, Proposal) and proposal.status in statuses else None

    def _do_proposal_revise(self, when: datetime, j: _Journey, reason: str) -> None:
        proposal = self._proposal(j, "draft", "returned", "presented")
        if proposal is None:
            return
        current = proposal.current
        products = list(current["products"])
        terms = {"currency": CURRENCY, "valid_days": 30, "products": {p: dict(t) for p, t in
                                                                      current["pricing_terms"]["products"].items()}}
        if reason == "customer asked to add a product":
            new = [p for p in PRODUCTS[j.segment] if p not in products]
            if new:
                products.append(new[0])
                terms["products"][new[0]] = self._pricing(new[0])
        for product_terms in terms["products"].values():
            if "rate_pct" in product_terms:
                product_terms["rate_pct"] += Decimal("0.05")
            elif "lpr_spread_bp" in product_terms:
                product_terms["lpr_spread_bp"] -= 5
            elif "fee_waiver_months" in product_terms:
                product_terms["fee_waiver_months"] = max(3, product_terms["fee_waiver_months"] - 3)
        proposal.revise(self._manager_ctx(j, when), products=products, pricing_terms=terms,
                        rights_and_obligations=current["rights_and_obligations"], reason=reason)
        self._touch(proposal)

    def _do_proposal_submit(self, when: datetime, j: _Journey, _: Any) -> None:
        proposal = self._proposal(j, "draft")
        if proposal is not None:
            proposal.submit(self._manager_ctx(j, when))
            self._touch(proposal)

    def _do_proposal_return(self, when: datetime, j: _Journey, reason: str) -> None:
        proposal = self._proposal(j, "submitted")
        if proposal is not None:
            checker = self._staff("product_manager")
            proposal.return_for_revision(self._ctx(checker.code, "product_manager", when, j.cause), reason=reason)
            self._touch(proposal)

    def _do_proposal_approve(self, when: datetime, j: _Journey, _: Any) -> None:
        proposal = self._proposal(j, "submitted")
        if proposal is not None:
            checker = self._staff("product_manager")
            proposal.approve(self._ctx(checker.code, "product_manager", when, j.cause),
                             reason="within pricing policy and the customer's needs")
            self._touch(proposal)

    def _do_proposal_present(self, when: datetime, j: _Journey, _: Any) -> None:
        proposal = self._proposal(j, "approved")
        if proposal is not None and not j.blocking:
            proposal.present(self._manager_ctx(j, when))
            self._touch(proposal)

    def _do_proposal_accept(self, when: datetime, j: _Journey, _: Any) -> None:
        proposal = self._proposal(j, "presented")
        if proposal is not None:
            proposal.accept(self._manager_ctx(j, when), reason="customer signed the acceptance letter")
            self._touch(proposal)

    def _do_proposal_decline(self, when: datetime, j: _Journey, reason: str) -> None:
        proposal = self._proposal(j, "presented")
        if proposal is not None:
            proposal.decline(self._manager_ctx(j, when), reason=reason)
            self._touch(proposal)
        j.objs.pop("proposal", None)

    def _do_proposal_withdraw(self, when: datetime, j: _Journey, reason: str) -> None:
        proposal = self._proposal(j, *PROPOSAL_OPEN)
        if proposal is not None:
            proposal.withdraw(self._manager_ctx(j, when), reason=reason)
            self._touch(proposal)
        j.objs.pop("proposal", None)

    def _do_contract_draft(self, when: datetime, j: _Journey, _: Any) -> None:
        proposal = j.objs.pop("proposal", None)
        if not isinstance(proposal, Proposal) or proposal.status != "accepted" or j.blocking:
            return
        contract = Contract.draft_from(self._manager_ctx(j, when), proposal, contract_id=self._new_id("contract"))
        j.products = list(proposal.current["products"])
        j.contract_id = contract.id
        j.objs["contract"] = contract
        self._touch(contract)

    def _contract(self, j: _Journey, *statuses: str) -> Contract | None:
        contract = j.objs.get("contract")
        return contract if isinstance(contract, Contract) and contract.status in statuses else None

    def _do_contract_review(self, when: datetime, j: _Journey, findings: list[dict[str, str]]) -> None:
        contract = self._contract(j, "drafted", "under_review")
        if contract is None:
            return
        if self.rng.random() < 0.3:
            checker = self._staff("compliance_auditor")
        else:
            checker = self._staff("reviewer", j.branch)
        contract.review_clauses(self._ctx(checker.code, checker.role, when, j.cause), findings=findings)
        self._touch(contract)

    def _do_contract_resolve(self, when: datetime, j: _Journey, arg: tuple[int, str]) -> None:
        contract = self._contract(j, "under_review")
        number, resolution = arg
        if contract is not None and number in contract.open_findings:
            contract.resolve_finding(self._manager_ctx(j, when), finding_number=number, resolution=resolution)
            self._touch(contract)

    def _do_contract_approve(self, when: datetime, j: _Journey, _: Any) -> None:
        contract = self._contract(j, "under_review")
        if contract is not None and not contract.open_findings:
            head = self.heads[j.branch]
            contract.approve(self._ctx(head.code, "branch_head", when, j.cause),
                             reason="clauses reviewed; findings resolved")
            self._touch(contract)

    def _do_contract_sign(self, when: datetime, j: _Journey, arg: bool | str) -> None:
        """Sign (``arg``: terminate the contract later?, or ``"retry"`` after a blocking risk case closed)."""
        contract = self._contract(j, "approved")
        customer = j.customer
        if contract is None or customer is None:
            return
        head = self.heads[j.branch]
        cases = [self._risk_case(j, case_id) for case_id in customer.open_risk_cases]
        try:
            contract.sign(self._ctx(head.code, "branch_head", when, j.cause), customer_signatory=j.signatory,
                          customer_risk_cases=cases)
        except ContractSigningBlockedByRisk:
            self.report.signings_refused_by_risk += 1
            j.parked = contract
            return
        self._touch(contract)
        j.contract_signed = True
        j.parked = None
        if arg is True:
            self._push(self._days_later(when, 90, 270), "contract_terminate", j)
        else:
            j.objs.pop("contract", None)
        if arg == "retry" and j.account_skipped:
            j.account_skipped = False
            self._plan_account(j, when)

    def _do_contract_terminate(self, when: datetime, j: _Journey, _: Any) -> None:
        contract = j.objs.pop("contract", None)
        if isinstance(contract, Contract) and contract.status == "signed":
            contract.terminate(self._ctx(self.heads[j.branch].code, "branch_head", when, j.cause),
                               reason=self.rng.choice(("customer relocated its business", "customer moved the "
                                                       "relationship to its group's main bank")))
            self._touch(contract)

    # ------------------------------------------------------------------ account opening and service (§2.5, §5)

    def _do_account_apply(self, when: datetime, j: _Journey, note: str | None) -> None:
        customer = j.customer
        assert customer is not None
        if j.via_contract and not j.contract_signed:
            j.account_skipped = True
            return
        if j.blocking or customer.stage not in (QUALIFIED, DOCUMENTS_RETURNED):
            return
        documents = list(DOCUMENTS[j.kind])
        if note:
            documents.append(note)
        customer.apply_for_account(self._manager_ctx(j, when), account_type=(
            "basic_deposit_account" if j.kind == "corporate" else "type_i_debit_account"), documents=documents)
        self._touch(customer)

    def _do_documents_review(self, when: datetime, j: _Journey, return_reason: str | None) -> None:
        customer = j.customer
        assert customer is not None
        if customer.stage != APPLIED:
            return
        clerk = self._staff("operations", j.branch)
        customer.review_documents(self._ctx(clerk.code, "operations", when, j.cause), accepted=return_reason is None,
                                  return_reasons=[return_reason] if return_reason else None)
        self._touch(customer)

    def _do_account_open(self, when: datetime, j: _Journey, _: Any) -> None:
        customer = j.customer
        assert customer is not None
        if customer.stage != DOCUMENTS_ACCEPTED:
            return
        clerk = self._staff("operations", j.branch)
        branch_digit = next(i for i, b in enumerate(BRANCHES, start=1) if b[1] == j.branch)
        product = "3100" if j.kind == "corporate" else "6217"
        customer.open_account(self._ctx(clerk.code, "operations", when, j.cause),
                              account_number=f"{product}{branch_digit}{self.seed % 100:02d}{j.number:010d}")
        self._touch(customer)
        self.stats["accounts", customer.manager_id, _quarter_key(when)] += 1

    def _do_products_sign(self, when: datetime, j: _Journey, _: Any) -> None:
        customer = j.customer
        assert customer is not None
        if customer.stage != ACCOUNT_OPENED or customer.products:
            return
        if not j.products:
            j.products = list(DIRECT_PRODUCTS) + (["term_deposit"] if self.rng.random() < 0.3 else [])
        clerk = self._staff("operations", j.branch)
        customer.sign_products(self._ctx(clerk.code, "operations", when, j.cause), products=j.products)
        self._touch(customer)

    def _do_serve(self, when: datetime, j: _Journey, _: Any) -> None:
        """Start the service: monthly figures, follow-up cycles, and now and then more."""
        customer = j.customer
        assert customer is not None
        if customer.stage != ACCOUNT_OPENED or j.serving:
            return
        rng = self.rng
        j.serving = True
        j.balance = j.target_balance * rng.uniform(0.1, 0.4)
        j.facts = {"needs": j.facts["needs"]}
        self.referrers.append(customer.id)
        self._push(self._report_time(when.year, when.month), "figures", j, (when.year, when.month, True), events=0)
        self._push(self._later(when, 5, 10), "follow_up_cycle", j, True, events=0)
        if rng.random() < 0.2:
            self._push(self._days_later(when, 60, 180), "cross_sell", j, events=0)
        if not customer.is_key and j.target_balance > SEGMENTS[j.kind][j.segment][1] * 3 and rng.random() < 0.5:
            self._push(self._days_later(when, 30, 120), "mark_key", j, events=0)

    def _report_time(self, year: int, month: int) -> datetime:
        """When the figures of ``year-month`` are reported: the third business day of the next month, 08:xx."""
        following = _add_months(date(year, month, 1), 1)
        return _at(_business_day(following, 2), 8 * 60 + self.rng.randint(0, 59))

    def _do_figures(self, when: datetime, j: _Journey, arg: tuple[int, int, bool]) -> None:
        year, month, first = arg
        customer = j.customer
        assert customer is not None
        rng = self.rng
        # Balances move in towards the customer's target, with noise; Q1 "opening red" lifts retail deposits.
        j.balance += (j.target_balance - j.balance) * rng.uniform(0.15, 0.45)
        j.balance *= math.exp(rng.gauss(0.0, 0.06)) * (1.03 if j.kind == "retail" and month <= 3 else 1.0)
        loans = 0.0
        if any(p in LOAN_PRODUCTS for p in customer.products):
            if first:
                loans = j.target_balance * rng.uniform(0.5, 2.0)
            elif j.kind == "corporate" and rng.random() < 0.2:
                loans = j.target_balance * rng.uniform(0.1, 0.5)
        if j.kind == "corporate":
            fee = j.target_balance * rng.uniform(0.0001, 0.0005) + 200
        else:
            fee = rng.uniform(0, 30) + j.balance * rng.uniform(0.0, 0.0008)
        if first:
            fee *= 0.5
        customer.report_business_figures(self._ctx("core-banking", "system", when, j.cause),
                                         period=f"{year:04d}-{month:02d}", currency=CURRENCY,
                                         deposit_balance=_money(j.balance), loans_disbursed=_money(loans),
                                         fee_income=_money(fee))
        self._touch(customer)
        following = _add_months(date(year, month, 1), 1)
        self._push(self._report_time(following.year, following.month), "figures", j,
                   (following.year, following.month, False), events=0)

    def _do_follow_up_cycle(self, when: datetime, j: _Journey, first: bool) -> None:
        """A return visit (回訪) — or a satisfaction survey — then the next cycle."""
        customer = j.customer
        assert customer is not None
        rng = self.rng
        if not first and rng.random() < 0.25:
            self._push(when + timedelta(minutes=rng.randint(5, 60)), "follow_up", j, "survey", events=0)
        else:
            key = j.next_key("visit")
            scheduled = _at(_business_day(when.date(), rng.randint(3, 10)), rng.choice(SLOTS))
            method = "phone" if first else _pick(rng, _table({"phone": 50, "in_person": 35, "video": 15}))
            purpose = "first-use guidance (首次使用指導)" if first else "periodic return visit (回訪)"
            self._do_visit_plan(when, j, (key, "follow_up", method, scheduled, purpose, False))
            if customer.is_key or rng.random() < 0.2:
                self._push(self._between(when, scheduled), "visit_prepare", j, key, events=0)
            if rng.random() < 0.08:  # never conducted: an overdue follow-up
                j.objs.pop(key, None)
            else:
                feedback = rng.random() < 0.3
                self._push(scheduled, "visit_conduct", j, (key, rng.randint(300, 2400), not feedback), events=0)
                self._push(scheduled + timedelta(minutes=30), "follow_up", j, "visit", events=0)
                if feedback:
                    self._push(scheduled + timedelta(minutes=45), "visit_feedback", j, key, events=0)
        interval = (25, 35) if customer.is_key else (40, 60) if j.kind == "corporate" else (75, 105)
        self._push(self._days_later(when, *interval), "follow_up_cycle", j, False, events=0)

    def _do_follow_up(self, when: datetime, j: _Journey, how: str) -> None:
        customer = j.customer
        assert customer is not None
        satisfaction = _pick(self.rng, KEY_SATISFACTION if customer.is_key else SATISFACTION)
        if how == "survey":
            ctx = self._ctx("customer-service-centre", "operations", when, j.cause)
        else:
            ctx = self._manager_ctx(j, when)
            period = _quarter_key(when)
            self.stats["satisfaction", customer.manager_id, period] += satisfaction
            self.stats["satisfaction_n", customer.manager_id, period] += 1
        customer.record_follow_up(ctx, satisfaction=satisfaction, feedback=FEEDBACK[satisfaction])
        self._touch(customer)

    def _do_cross_sell(self, when: datetime, j: _Journey, _: Any) -> None:
        customer = j.customer
        assert customer is not None
        if j.blocking:
            return
        new = [p for p in PRODUCTS[j.segment] if p not in customer.products]
        if new:
            clerk = self._staff("operations", j.branch)
            customer.sign_products(self._ctx(clerk.code, "operations", when, j.cause), products=[self.rng.choice(new)])
            self._touch(customer)

    # ------------------------------------------------------------------ risk (§4)

    def _risk_case(self, j: _Journey, case_id: uuid.UUID) -> RiskCase:
        for obj in j.objs.values():
            if isinstance(obj, RiskCase) and obj.id == case_id:
                return obj
        return self.app.repository.get(case_id)

    def _do_risk_identify(self, when: datetime, j: _Journey, arg: tuple) -> None:
        key, subject, category, description = arg
        customer = j.customer
        assert customer is not None
        officer = self._staff("risk_officer")
        ctx = self._ctx(officer.code, "risk_officer", when, j.cause)
        if subject == "contract" and j.contract_id is not None:
            subject_id = j.contract_id
        else:
            subject, subject_id = "customer", customer.id
        case = RiskCase.identify(ctx, subject_type=subject, subject_id=subject_id, customer_id=customer.id,
                                 category=category, description=description, risk_case_id=self._new_id("risk-case"))
        customer.link_risk_case(ctx, risk_case_id=case.id)
        self._touch(customer, case)
        j.objs[key] = case

    def _open_case(self, j: _Journey, key: str, *statuses: str) -> RiskCase | None:
        case = j.objs.get(key)
        return case if isinstance(case, RiskCase) and case.status in statuses else None

    def _do_risk_assess(self, when: datetime, j: _Journey, arg: tuple) -> None:
        key, scores = arg
        case = self._open_case(j, key, "identified")
        if case is not None:
            officer = self._staff("risk_officer")
            case.assess(self._ctx(officer.code, "risk_officer", when, j.cause), indicator_scores=scores,
                        reason="scored with the bank's indicator system")
            self._touch(case)

    def _do_risk_respond(self, when: datetime, j: _Journey, arg: tuple) -> None:
        key, response, measures, reason = arg
        case = self._open_case(j, key, "assessed")
        if case is None:
            return
        officer = self._staff("risk_officer")
        ctx = self._ctx(officer.code, "risk_officer", when, j.cause)
        case.decide_response(ctx, response=response, measures=measures, reason=reason)
        self._touch(case)
        if response == "avoid":
            j.blocking.append(case.id)
            self._stop_business(j, when + timedelta(minutes=30), case)

    def _stop_business(self, j: _Journey, when: datetime, case: RiskCase) -> None:
        """Avoid (§4): withdraw the customer's open proposal and cancel planned acquisition visits."""
        reason = f"risk case {case.id} decided avoid: no business with this customer (measures §4)"
        ctx = self._manager_ctx(j, when)
        for key, obj in list(j.objs.items()):
            if isinstance(obj, Proposal) and obj.status in PROPOSAL_OPEN:
                obj.withdraw(ctx, reason=reason)
                self._touch(obj)
                del j.objs[key]
            elif isinstance(obj, Visit) and obj.kind == "acquisition" and obj.status in (PLANNED, PREPARED):
                obj.cancel(ctx, reason=reason)
                self._touch(obj)
                del j.objs[key]

    def _do_risk_reading(self, when: datetime, j: _Journey, arg: tuple) -> None:
        key, indicator, value, threshold, direction = arg
        case = self._open_case(j, key, "responding")
        if case is not None:
            case.record_reading(self._ctx("risk-monitoring", "system", when, j.cause), indicator=indicator,
                                value=value, threshold=threshold, direction=direction)
            self._touch(case)

    def _do_risk_dispose(self, when: datetime, j: _Journey, arg: tuple) -> None:
        key, actions, findings = arg
        case = self._open_case(j, key, "assessed", "responding")
        if case is not None:
            officer = self._staff("risk_officer")
            case.dispose(self._ctx(officer.code, "risk_officer", when, j.cause), actions=actions, findings=findings)
            self._touch(case)

    def _do_risk_close(self, when: datetime, j: _Journey, arg: tuple) -> None:
        key, reason = arg
        case = self._open_case(j, key, "disposed")
        customer = j.customer
        if case is None or customer is None:
            return
        officer = self._staff("risk_officer")
        ctx = self._ctx(officer.code, "risk_officer", when, j.cause)
        case.close(ctx, reason=reason)
        customer.unlink_risk_case(ctx, risk_case_id=case.id)
        self._touch(case, customer)
        del j.objs[key]
        if case.id in j.blocking:
            j.blocking.remove(case.id)
        if not j.blocking and j.parked is not None:  # business may resume: sign the parked contract
            self._push(self._later(when, 2, 5), "contract_sign", j, "retry", events=0)


def first_customer_id(seed: int) -> uuid.UUID:
    """The id of the first customer the demo of ``seed`` registers."""
    return uuid.uuid5(NAMESPACE, f"tuohu-demo:{seed}:customer:1")


def check_new_seed(app: TuohuApplication, seed: int) -> None:
    """Raise :class:`DemoAlreadyGenerated` if the demo of ``seed`` is already in ``app``'s store."""
    first = first_customer_id(seed)
    if app.recorder.select_events(first, limit=1):
        raise DemoAlreadyGenerated(
            f"the demo of seed {seed} is already in this store (its first customer {first} exists); "
            "generate with another seed"
        )


def generate_demo(app: TuohuApplication, *, events: int, seed: int = 1, start: date = date(2024, 1, 1),
                  months: int = 12, batch_size: int = 300,
                  progress: Callable[[int], None] | None = None) -> DemoReport:
    """Write about ``events`` events of a synthetic acquisition business into ``app``; see the module docstring.

    ``progress`` is called with the number of events of each saved batch.
    Raises :class:`DemoAlreadyGenerated` (before writing) when this seed's demo is already in the store,
    ``ValueError`` for ``events`` or ``months`` below 1.
    """
    return DemoGenerator(app, events=events, seed=seed, start=start, months=months, batch_size=batch_size,
                         progress=progress).run()


__all__: Sequence[str] = ["DemoAlreadyGenerated", "DemoGenerator", "DemoReport", "check_new_seed", "first_customer_id",
                          "generate_demo", "season"]
