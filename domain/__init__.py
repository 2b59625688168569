"""tuohu's domain: the aggregates of the Customer Acquisition Management Measures."""

from domain.base import Context, DomainError, IllegalTransition, InvalidValue, MakerCheckerViolation, ReasonRequired
from domain.contract import Contract
from domain.customer import Customer
from domain.proposal import Proposal
from domain.receipt import CommandReceipt
from domain.risk import RiskCase
from domain.visit import Visit

AGGREGATES = (Customer, Visit, Proposal, Contract, RiskCase, CommandReceipt)

__all__ = [
    "AGGREGATES", "CommandReceipt", "Context", "Contract", "Customer", "DomainError", "IllegalTransition",
    "InvalidValue", "MakerCheckerViolation", "Proposal", "ReasonRequired", "RiskCase", "Visit",
]
