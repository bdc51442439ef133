"""The long_wait customer rule, added in cxstream/alerts/customer_rules.py alone: it fires
on a long wait on a live channel, its section of the rules file is validated, it folds,
resolves and is off until the rules file turns it on, in the rules and in the worker's
core."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cxstream.alerts.comment_tags import load_tagger
from cxstream.alerts.config import RulesError, load_rules
from cxstream.alerts.customer_alerts import CustomerAlerts
from cxstream.alerts.customer_rules import LongWaitRule, RuleFacts, long_wait_trigger
from cxstream.alerts.reactions import AlertOut
from cxstream.scoring.customer import StateRules, apply_interaction
from cxstream.streams.settings import Settings
from testkit.support import (
    RULES_T0,
    Bands,
    interaction,
    ix,
    outputs_of_core,
    to_bytes,
    with_profile,
)

ON = """
long_wait:
  enabled: true
  wait_minutes_min: 15
  channels: [phone]
"""


def facts(**overrides: Any) -> RuleFacts:
    return RuleFacts(ix(**overrides), None, {}, [])


def test_it_fires_at_the_threshold_on_its_channels_only() -> None:
    rule = LongWaitRule(enabled=True)
    fired = long_wait_trigger(facts(wait_seconds=20 * 60), rule)
    assert fired is not None and fired.rule == "long_wait"
    assert fired.reason["wait_minutes"] == 20 and fired.reason["channel"] == "phone"
    assert long_wait_trigger(facts(wait_seconds=20 * 60 - 1), rule) is None
    assert long_wait_trigger(facts(wait_seconds=3600, channel="email"), rule) is None
    assert long_wait_trigger(facts(), rule) is None  # no wait given
    assert long_wait_trigger(facts(wait_seconds=3600), LongWaitRule()) is None  # off


def rules_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


def test_its_section_is_read_and_checked_like_any_other(tmp_path: Path) -> None:
    config = load_rules(rules_file(tmp_path, ON))
    assert config.rule_settings("long_wait") == LongWaitRule(
        enabled=True, wait_minutes_min=15, channels=["phone"])
    assert load_rules().rule_settings("long_wait").enabled is False  # shipped: off
    with pytest.raises(RulesError, match=r"long_wait\.wait_minuts"):
        load_rules(rules_file(tmp_path, "long_wait:\n  wait_minuts: 5\n"))
    with pytest.raises(RulesError, match=r"long_wait\.wait_minutes_min"):
        load_rules(rules_file(tmp_path, "long_wait:\n  wait_minutes_min: 0\n"))
    with pytest.raises(RulesError, match="long_waits"):  # an unknown section still is
        load_rules(rules_file(tmp_path, "long_waits:\n  enabled: true\n"))


def wait(engine: CustomerAlerts, state: Any, minutes: float, seconds: float
         ) -> tuple[Any, list[tuple[str, Any]]]:
    event = ix(minutes=minutes, event_id=f"i-{minutes}", wait_seconds=seconds)
    after = apply_interaction(state, event, StateRules())
    return engine.react(event, state, after, [])


def test_one_alert_per_cause_folded_within_its_cooldown_and_resolved_by_a_short_wait(
        tmp_path: Path) -> None:
    engine = CustomerAlerts(load_rules(rules_file(tmp_path, ON)), load_tagger(),
                            Bands(set()).report, lambda: RULES_T0)
    state, raised = wait(engine, with_profile(), 0, 30 * 60)
    assert [(status, alert.rule) for status, alert in raised] == [("new", "long_wait")]
    first = raised[0][1]
    assert first.summary == "c-1 waited 30 min on phone about support"
    state, raised = wait(engine, state, 10, 40 * 60)
    assert [(status, alert.alert_id, alert.occurrences) for status, alert in raised] == [
        ("folded", first.alert_id, 2)]
    event = ix(minutes=20, event_id="i-short", wait_seconds=60)
    state, resolved = engine.settle(event, apply_interaction(state, event, StateRules()))
    assert [(r.alert_id, r.rule) for r in resolved] == [(first.alert_id, "long_wait")]
    assert "later phone wait of 1 min" in resolved[0].reason


def test_off_by_default_the_rules_raise_nothing_for_a_long_wait() -> None:
    engine = CustomerAlerts(load_rules(), load_tagger(), Bands(set()).report,
                            lambda: RULES_T0)
    _, raised = wait(engine, with_profile(), 0, 3 * 3600)
    assert raised == []


class NoDeadLetters:
    async def write(self, topic: str, partition: int, rejected: Any) -> list[int]:
        raise AssertionError(f"dead-lettered: {rejected}")


@pytest.mark.parametrize("enabled", [True, False])
def test_the_worker_core_raises_it_when_the_rules_file_turns_it_on(
        tmp_path: Path, enabled: bool) -> None:
    """Through build_core and the ingest, as a worker runs a batch (the core's quick test
    of whether any rule may fire includes the added rule)."""
    settings = Settings(bootstrap_servers="localhost:1",
                        rules_file=rules_file(tmp_path, ON if enabled else "{}"))
    now = datetime.now(UTC).replace(microsecond=0).isoformat()  # the core's clock: now
    record = SimpleNamespace(kind="interactions", key=b"c-9", value=to_bytes(interaction(
        customer_id="c-9", event_id="i-9", occurred_at=now, wait_seconds=25 * 60)))
    outputs = outputs_of_core(settings, [record])
    raised = [output.alert.rule for output in outputs if isinstance(output, AlertOut)]
    assert raised == (["long_wait"] if enabled else [])
