"""Installed distributions planted on a path, as pip leaves them (a ``.dist-info``
directory): real metadata for the checks that read what is installed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def plant_distribution(
    directory: Path,
    name: str,
    *,
    top_level: Sequence[str] = (),
    requires: Sequence[str] = (),
) -> Path:
    """Put distribution ``name`` 1.0 in ``directory`` (made if need be); return ``directory``."""
    info = directory / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
    lines += [f"Requires-Dist: {requirement}" for requirement in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    if top_level:
        (info / "top_level.txt").write_text("".join(f"{package}\n" for package in top_level))
    return directory
