"""Launch tests that must run: with RT_ROS_REQUIRE_LAUNCH_TESTS=1 (set by .ci/run where the launch
stack is at hand: the launch wheels or a ROS install), a launch test or module that would be
skipped fails instead, with the reason it gave. Without it, they skip with that reason."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

REQUIRED = os.environ.get("RT_ROS_REQUIRE_LAUNCH_TESTS") == "1"


def _fail_if_skipped(report: pytest.TestReport | pytest.CollectReport) -> None:
    if REQUIRED and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, but RT_ROS_REQUIRE_LAUNCH_TESTS=1 says run: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    _fail_if_skipped(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    _fail_if_skipped(outcome.get_result())
