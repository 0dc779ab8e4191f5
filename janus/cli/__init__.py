"""The ``janus`` command-line tool."""

import click

from janus.cli.commands import COMMANDS
from janus.contract.crd import crd_yaml
from janus.dev.cli import dev


@click.group()
@click.version_option(package_name="janus")
def main() -> None:
    """Atomic, all-or-nothing changes to a Kubernetes cluster, run on Temporal."""


@main.command()
def crd() -> None:
    """Print the Transaction CustomResourceDefinition (generated from the models)."""
    click.echo(crd_yaml(), nl=False)


main.add_command(dev)
for command in COMMANDS:
    main.add_command(command)
