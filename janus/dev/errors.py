"""The one exception the dev control plane raises at its users.

Everything that goes wrong while building or running the local servers and that
a person can fix (install Go, free a port, read a log) surfaces as
``DevClusterError`` whose message says what to do. The CLI prints the message and
exits 1; tests see it as an ordinary exception with a readable text.
"""


class DevClusterError(Exception):
    """A dev control-plane problem the user can act on; the message says how."""


class PortTaken(DevClusterError):
    """A port chosen for a server was taken before the server bound it.

    Ports are chosen free and bound a moment later by another process, so a
    second control plane starting at the same time can win the race; ``up``
    then starts again on fresh ports instead of failing.
    """
