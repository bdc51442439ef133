"""SIGKILL every 5-20 s while events pour in: nothing lost, nothing duplicated.

CI runs 20,000 events; ``bench/fault_injection.py`` runs the full 100,000.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.faults import run_fault_test
from testkit.support import base_env

pytestmark = pytest.mark.integration
EVENTS = 20_000


@pytest.mark.timeout(900)
def test_sigkill_every_5_to_20_seconds_loses_nothing_and_duplicates_no_alert(
    isolated: dict[str, str], tmp_path: Path
) -> None:
    values = {**isolated, "api_token": "fault-run-token-of-32-characters-or-more",
              "partitions": "4"}
    report = run_fault_test(values, base_env(), tmp_path, events=EVENTS)
    print(f"\nfault injection: {report.line()}; kills at {report.kill_times} s")
    if report.difference_examples:
        print(f"tallies differing from the batch recomputation: {report.difference_examples}")
    if report.duplicate_examples:
        print(f"alerts posted twice, on the topic: {report.duplicate_examples}")
    assert report.kills >= 3
    assert report.alerts > 0 and report.webhook_posts >= report.alerts
    # compared as multisets: each bad input dead-lettered exactly once, each valid input
    # applied exactly once, every alert id on the topic at the webhook
    assert (report.lost_valid, report.unexpected_valid, report.doubled_valid,
            report.missing_deadletters, report.doubled_deadletters, report.missing_alerts,
            report.tally_differences) == (0, 0, 0, 0, 0, 0, 0)
    # Delivery to an HTTP receiver is at least once: an alert posted in the instant before
    # a SIGKILL, whose offset commit the kill cut off, is posted again (with the same
    # webhook-id, for the receiver to drop). Any other duplicate is a defect.
    assert report.unexplained_duplicates == 0, report.duplicate_examples
    assert report.in_flight_duplicates <= report.kills
