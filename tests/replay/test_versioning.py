"""Generations of workflow code as task queues, and the README's list of patch ids."""

from __future__ import annotations

import re

from janus.contract.versioning import GENERATION, OLDEST_SERVED, generation_queue, served_queues
from tests.replay.releases import ROOT

#: ``workflow.patched("id")`` with a real id (the rule's ``<short-descriptive-id>`` is not one).
PATCH_CALL = re.compile(
    r"workflow\.(?:patched|deprecate_patch)\(\s*[\"']([a-z0-9][a-z0-9._-]*)[\"']"
)


def patch_ids(source: str) -> set[str]:
    return set(PATCH_CALL.findall(source))


def unlisted_patches(sources: dict[str, str], readme: str) -> list[str]:
    """Patch ids used in the workflow code but missing from the README's upgrade section."""
    section = readme.split("## Upgrading Janus", 1)[-1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE))
    return sorted(
        f"{name}: {pid}" for name, text in sources.items() for pid in patch_ids(text) - listed
    )


def test_generation_one_is_the_plain_queue_and_a_worker_serves_every_kept_generation() -> None:
    assert generation_queue("janus", 1) == "janus"
    assert generation_queue("janus", 2) == "janus-g2"
    served = served_queues("janus")
    assert served[0] == generation_queue("janus", GENERATION)
    assert len(served) == GENERATION - OLDEST_SERVED + 1
    assert "janus" in served  # 0.1.0's transactions are still finished and retried


def test_every_patch_id_in_the_workflow_is_listed_in_the_readme() -> None:
    sources = {
        str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "workflows").glob("**/*.py")
    }
    readme = (ROOT / "README.md").read_text()
    missing = unlisted_patches(sources, readme)
    assert not missing, f"list these in README 'Upgrading Janus' (id, release, change): {missing}"


def test_the_patch_list_check_finds_a_planted_unlisted_patch() -> None:
    planted = {"workflows/x.py": 'if workflow.patched("health-waits"):\n    ...'}
    readme = "## Upgrading Janus\n\n| Patch id | Since |\n|---|---|\n| `other` | 0.2.0 |\n"
    assert unlisted_patches(planted, readme) == ["workflows/x.py: health-waits"]
    listed = readme + "| `health-waits` | 0.2.0 |\n"
    assert unlisted_patches(planted, listed) == []
