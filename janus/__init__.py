"""Janus: atomic, all-or-nothing changes to a Kubernetes cluster.

A ``Transaction`` lists changes (Create, Update, Patch, Delete). Janus runs it as a
durable Temporal workflow: it takes a Lease per target, snapshots each target,
applies the changes in order and registers an undo for each; if a step fails or
the workflow is cancelled, the undos run in reverse and the cluster is back where
it was.

This package holds the contract every part shares (``janus.contract``), the
connections to the servers (``janus.clients``), the processes that wire
``workflows/``, ``activities/`` and ``bridge/`` together (``janus.runtime``), the
``janus`` command (``janus.cli``) and the dev control plane (``janus.dev``, the
``janus[dev]`` extra). docs/architecture.md draws the layers; ``.importlinter``
enforces them. Nothing is imported here: ``import janus.contract`` loads none of
the others.
"""

__version__ = "0.1.0"
