"""Janus: atomic, all-or-nothing changes to a Kubernetes cluster.

A ``Transaction`` lists changes (Create, Update, Patch, Delete). Janus runs it as a
durable Temporal workflow: it takes a Lease per target, snapshots each target,
applies the changes in order and registers an undo for each; if a step fails or
the workflow is cancelled, the undos run in reverse and the cluster is back where
it was.

This package holds what every process shares: the API models, configuration and
the ``janus`` command-line tool. ``workflows/``, ``activities/`` and ``bridge/``
build on it and never on one another's internals.
"""

__version__ = "0.1.0"
