"""The one exception the dev control plane raises at its users.

Everything that goes wrong while building or running the local servers and that
a person can fix (install Go, free a port, read a log) surfaces as
``DevClusterError`` whose message says what to do. The CLI prints the message and
exits 1; tests see it as an ordinary exception with a readable text.
"""


class DevClusterError(Exception):
    """A dev control-plane problem the user can act on; the message says how."""
