"""tuohu's domain: the aggregates of the Customer Acquisition Management Measures."""

from domain.base import Context, DomainError, IllegalTransition, InvalidValue, MakerCheckerViolation, ReasonRequired
from domain.contract import Contract
from domain.customer import Customer
from domain.proposal import Proposal
from domain.receipt import CommandReceipt
from domain.risk import RiskCase
from domain.team import AppraisalScheme, Staff, Target
from domain.user import User
from domain.visit import Visit

AGGREGATES = (Customer, Visit, Proposal, Contract, RiskCase, Staff, AppraisalScheme, Target, User, CommandReceipt)

__all__ = [
    "AGGREGATES", "AppraisalScheme", "CommandReceipt", "Context", "Contract", "Customer", "DomainError", "IllegalTransition",
    "InvalidValue", "MakerCheckerViolation", "Proposal", "ReasonRequired", "RiskCase", "Staff", "Target", "User", "Visit",
]
