"""The ``janus`` command's options, made from the settings models.

Each setting is declared once, as a field of ``janus.contract.settings``
(``setting``: flag, environment variable, default, help). Here each field
with a flag becomes a click option named ``<section>__<field>``, which parses
the flag only: a flag that is not given is None, and ``load`` then fills it
from the environment (``values_from_env``; the ``TEMPORAL_*`` variables and
the profile file through the SDK) before the model's defaults. So ``--help``,
the environment and the defaults cannot drift apart, and a validation error
points back at the flag (``flag_of``).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

import click
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from janus.contract.settings import ProcessSettings, declared

P = ParamSpec("P")
R = TypeVar("R")

SEPARATOR = "__"


def _fields(section: str) -> Iterator[tuple[str, FieldInfo, dict[str, Any]]]:
    for name, info in ProcessSettings.sections()[section].model_fields.items():
        found = declared(info)
        if found.get("flag"):
            yield name, info, found


def options(*wanted: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator adding the options of these sections, in declaration order."""
    made = [_option(section, *field) for section in wanted for field in _fields(section)]

    def apply(command: Callable[P, R]) -> Callable[P, R]:
        for option in reversed(made):
            command = option(command)
        return command

    return apply


def _option(
    section: str, name: str, info: FieldInfo, found: dict[str, Any]
) -> Callable[[Any], Any]:
    flag: str = found["flag"]
    decls = [d for d in (found.get("short"), flag) if d]
    kind = _unwrap(info.annotation)
    extra: dict[str, Any] = {}
    if kind is bool and "/" not in flag:
        extra["is_flag"] = True
    elif kind is bool:
        pass
    elif typing.get_origin(kind) is tuple:
        extra["multiple"] = True
    elif typing.get_origin(kind) is Literal:
        extra["type"] = click.Choice(typing.get_args(kind))
    elif kind is Path:
        extra["type"] = click.Path(path_type=Path)
    elif kind in (int, float):
        extra["type"] = kind
    return click.option(
        *decls,
        f"{section}{SEPARATOR}{name}" if section else name,
        default=None,
        help=_help(info, found),
        **extra,
    )


def _unwrap(annotation: Any) -> Any:
    """``Path | None`` → ``Path``; ``SecretStr`` → ``str``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return str if annotation is SecretStr else annotation


def _help(info: FieldInfo, found: dict[str, Any]) -> str:
    """The description, then where else the value comes from: ``[env var: X]  [default: Y]``
    (click's own markers need a click default, and a click default would hide the
    environment and the profile from ``load``)."""
    parts = [info.description or ""]
    if found.get("env"):
        parts.append(f"[env var: {found['env']}]")
    default = found.get("shown_default", info.default)
    if isinstance(default, str | int | float) and not isinstance(default, bool) and default != "":
        parts.append(f"[default: {default}]")
    return "  ".join(part for part in parts if part)


def given(o: dict[str, Any], *wanted: str) -> dict[str, dict[str, Any]]:
    """The flags given on the command line, by section (not given: absent)."""
    found: dict[str, dict[str, Any]] = {section: {} for section in wanted}
    for key, value in o.items():
        section, _, name = key.rpartition(SEPARATOR)
        if section in found and value is not None and value != ():
            found[section][name] = value
    return found


def load(o: dict[str, Any], *wanted: str) -> ProcessSettings:
    """The process's settings: the flags in ``o``, else the environment, else the defaults
    (``janus.runtime.settings.load``, which raises what it says)."""
    from janus.runtime import settings

    return settings.load(given(o, "", *wanted))


def flag_of(location: tuple[int | str, ...]) -> str:
    """The flag of a validation error's field (``--temporal-address``; its variable when it
    has no flag), else "" (an error of a whole section, e.g. a certificate without its key)."""
    parts = [str(part) for part in location]
    sections = ProcessSettings.sections()
    if len(parts) >= 2 and parts[0] in sections:
        section, name = parts[0], parts[1]
    elif len(parts) == 1 and parts[0] not in sections:
        section, name = "", parts[0]
    else:
        return ""
    info = sections[section].model_fields.get(name)
    found = declared(info) if info is not None else {}
    if found.get("flag"):
        return str(found["flag"]).split("/")[0]
    return str(found.get("env") or name.replace("_", "-"))  # a setting only a variable sets
