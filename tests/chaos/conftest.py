"""The fault explorer's summary, printed at the end of the pytest session."""

from __future__ import annotations

from _pytest.terminal import TerminalReporter

#: Filled by test_campaign: the campaign's summary lines.
SUMMARY: list[str] = []


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    if not SUMMARY:
        return
    terminalreporter.section("fault explorer")
    for line in SUMMARY:
        terminalreporter.write_line(line)
