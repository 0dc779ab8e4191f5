"""Connections to what Janus talks to: the Kubernetes API (every request with a
timeout), Temporal (the one client factory), and the child processes it starts
(the launcher). Used by the activities, the bridge, the runtime and the dev
plane; never by the workflows."""
