"""The only code that calls the Kubernetes API: leases, snapshots, changes, status."""

from activities.cluster import Cluster
from activities.registry import TransactionActivities
from activities.runs import CurrentRuns

__all__ = ["Cluster", "CurrentRuns", "TransactionActivities"]
