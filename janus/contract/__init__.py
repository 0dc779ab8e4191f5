"""The contract every process shares: the API models, the activities' inputs and
results, the user-facing errors, the CRD, settings and metric names. It imports
nothing else of Janus, so any layer may depend on it."""
