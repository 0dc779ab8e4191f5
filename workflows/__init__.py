"""Deterministic saga code: the Transaction workflow. No I/O here."""

from workflows.transaction import TransactionWorkflow

__all__ = ["TransactionWorkflow"]
