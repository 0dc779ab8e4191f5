"""The ``janus`` command-line tool."""

import click

from janus.dev.cli import dev


@click.group()
@click.version_option(package_name="janus")
def main() -> None:
    """Atomic, all-or-nothing changes to a Kubernetes cluster, run on Temporal."""


main.add_command(dev)
