"""A process's settings, from its flags, its environment and the defaults, in that order.

The flags come parsed by the ``janus`` command (``janus.cli.flags``); a process
started without one (a test's or a benchmark's bare worker,
``janus.runtime.worker.serve_from_env``) passes none. Each section's fields name
the variable that sets them (``janus.contract.settings.setting``); the Temporal
section is read as the Temporal CLI reads it (``janus.clients.temporal.temporal_values``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from janus.clients.temporal import temporal_values
from janus.contract.settings import ProcessSettings, values_from_env


def load(
    flags: Mapping[str, Mapping[str, Any]], env: Mapping[str, str] | None = None
) -> ProcessSettings:
    """The settings of the sections in ``flags`` ("" for ``ProcessSettings``' own fields).

    Raises:
        pydantic.ValidationError: every problem, each located at its field.
        ValueError: the Temporal profile file cannot be read.
    """
    environ = os.environ if env is None else env
    sections = ProcessSettings.sections()
    values = values_from_env(ProcessSettings, flags.get("", {}), environ)
    for section, given in flags.items():
        if section == "temporal":
            values[section] = temporal_values(given, environ)
        elif section:
            values[section] = values_from_env(sections[section], given, environ)
    return ProcessSettings.model_validate(values)
