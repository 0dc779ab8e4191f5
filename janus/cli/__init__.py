"""The ``janus`` command-line tool."""

import click

from janus.cli.commands import COMMANDS
from janus.contract.crd import crd_yaml

DEV_EXTRA = "pip install 'janus[dev]'"


@click.group()
@click.version_option(package_name="janus")
def main() -> None:
    """Atomic, all-or-nothing changes to a Kubernetes cluster, run on Temporal."""


@main.command()
def crd() -> None:
    """Print the Transaction CustomResourceDefinition (generated from the models)."""
    click.echo(crd_yaml(), nl=False)


def _dev_group() -> click.Command:
    """``janus dev``; without the dev extra installed, a stand-in that says how to get it."""
    try:
        from janus.dev.cli import dev
    except ModuleNotFoundError as missing:
        return _needs_dev_extra(missing.name or str(missing))
    return dev


def _needs_dev_extra(module: str) -> click.Command:
    @click.command(
        name="dev",
        context_settings={
            "ignore_unknown_options": True,
            "allow_extra_args": True,
            "help_option_names": [],
        },
    )
    def dev() -> None:
        """The local control plane (needs the dev extra: pip install 'janus[dev]')."""
        raise click.ClickException(
            f"`janus dev` needs the dev extra, which is not installed here "
            f"({module} is missing): {DEV_EXTRA}"
        )

    return dev


main.add_command(_dev_group())
for command in COMMANDS:
    main.add_command(command)
