"""Connections to the servers Janus talks to: the Kubernetes API (every request
with a timeout) and Temporal. Used by the activities, the bridge and the runtime;
never by the workflows."""
