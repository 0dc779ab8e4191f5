"""The composition root: the only place that wires workflows, activities and the
bridge into processes (the worker, `janus run`, their health and metrics servers)."""
