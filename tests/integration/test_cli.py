"""CLI commands against the real broker: topics, send file, dead-letter listing, demo."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxstream.cli.main import app
from cxstream.streams.kafka.plain_clients import read_topic
from cxstream.streams.settings import Settings
from testkit.support import feedback

pytestmark = pytest.mark.integration
runner = CliRunner()


def env_of(isolated: dict[str, str]) -> dict[str, str]:
    return {f"CXSTREAM_{name.upper()}": value for name, value in isolated.items()}


def test_topics_create_and_send_file(isolated: dict[str, str], isolated_settings: Settings,
                                     tmp_path: Path) -> None:
    created = runner.invoke(app, ["topics", "create"], env=env_of(isolated))
    assert created.exit_code == 0, created.output
    assert (f"{isolated_settings.topic_feedback}: 3 partitions, replication 1 (created)"
            in created.output)

    topic = ["--topic", isolated_settings.topic_feedback]
    lines = [json.dumps(feedback(event_id=f"e{i}", customer_id=f"c{i}")) for i in range(4)]
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join([*lines, "not json"]) + "\n")
    refused = runner.invoke(app, ["send", "file", str(mixed), *topic], env=env_of(isolated))
    assert refused.exit_code == 2, refused.output
    assert "line 5 is not JSON" in refused.output
    path = tmp_path / "feedback.jsonl"
    path.write_text("\n".join(lines[:2]) + "\n\n")
    pretty = tmp_path / "one.json"  # as docs/examples are written: one indented document
    pretty.write_text(json.dumps(feedback(event_id="e2", customer_id="c2"), indent=2))
    array = tmp_path / "two.json"
    array.write_text(json.dumps([feedback(event_id="e3", customer_id="c3"),
                                 feedback(event_id="e4", customer_id="c4")], indent=2))
    for sent_file, count in ((path, 2), (pretty, 1), (array, 2)):
        sent = runner.invoke(app, ["send", "file", str(sent_file), *topic], env=env_of(isolated))
        assert sent.exit_code == 0, sent.output
        assert f"sent {count} messages" in sent.output
    stored = asyncio.run(read_topic(isolated_settings, isolated_settings.topic_feedback))
    assert sorted(r.key for r in stored) == [b"c0", b"c1", b"c2", b"c3", b"c4"]  # none of
    # the refused file's
    assert all(json.loads(r.value or b"")["customer_id"] == (r.key or b"").decode()
               for r in stored)




async def listed_topics(settings: Settings) -> set[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    from cxstream.streams.kafka.clients import aiokafka_options

    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def test_topics_made_before_by_the_broker_are_reported_not_trusted(
        isolated: dict[str, str], isolated_settings: Settings) -> None:
    """Topics the broker auto-created (one partition, replication 1, not compacted) fail
    ``topics create`` naming each problem; asking more replication than brokers fails
    even when every topic exists; and no command makes a topic by naming it."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from cxstream.streams.kafka.clients import aiokafka_options, contract_topics

    shown = runner.invoke(app, ["deadletter", "show"], env=env_of(isolated))
    assert shown.exit_code == 0, shown.output
    assert isolated_settings.topic_deadletter not in asyncio.run(listed_topics(
        isolated_settings))  # read without being made

    async def as_auto_created() -> None:
        admin = AIOKafkaAdminClient(**aiokafka_options(isolated_settings))
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, 3, 1)
                                       for name in contract_topics(isolated_settings)])
        finally:
            await admin.close()

    asyncio.run(as_auto_created())
    refused = runner.invoke(app, ["topics", "create"], env=env_of(isolated))
    assert refused.exit_code == 1, refused.output
    for name in (isolated_settings.topic_customers, isolated_settings.topic_alert_lifecycle):
        assert f"{name} has cleanup.policy=delete but must be compacted" in refused.output
    assert isolated_settings.topic_feedback + " has" not in refused.output

    more = runner.invoke(app, ["topics", "create"],
                         env={**env_of(isolated), "CXSTREAM_REPLICATION_FACTOR": "3"})
    assert more.exit_code == 1
    assert "CXSTREAM_REPLICATION_FACTOR=3 is more than the 1 broker(s)" in more.output


def test_the_replication_factor_follows_the_cluster_and_more_than_its_brokers_is_refused(
        isolated: dict[str, str], isolated_settings: Settings) -> None:
    refused = runner.invoke(app, ["topics", "create"],
                            env={**env_of(isolated), "CXSTREAM_REPLICATION_FACTOR": "3"})
    assert refused.exit_code != 0
    assert "CXSTREAM_REPLICATION_FACTOR=3 is more than the 1 broker(s)" in refused.output

    assert isolated_settings.topic_feedback not in asyncio.run(
        listed_topics(isolated_settings))  # nothing made
    created = runner.invoke(app, ["topics", "create"], env=env_of(isolated))
    assert created.exit_code == 0, created.output  # unset: the broker's default (1 here)


def test_send_example_raises_the_readme_alert_today(
        isolated: dict[str, str], tmp_path: Path) -> None:
    """The README's examples, sent as they are, are too old for the customer rules;
    ``cxstream send example`` stamps them now and the documented alert comes back."""
    from testkit.support import Api, configure, start

    run = configure({k: v for k, v in isolated.items()  # the shipped band minimum
                     if k != "high_value_min_customers"})
    worker = start(run, tmp_path, "worker")
    try:
        worker.wait_for("cxstream_ready", 1, timeout=120)
        sent = runner.invoke(app, ["send", "example"], env=env_of(run))
        assert sent.exit_code == 0, sent.output
        customer = sent.output.split("--customer-id ")[1].split()[0]
        assert customer.startswith("cus-20417-")
        worker.wait_for("cxstream_alerts_raised_total", 1, timeout=60)
        api = Api(int(run["web_port"]))
        [row] = api.get("/api/alerts", customer_id=customer)["alerts"]
        alert = api.get(f"/api/alerts/{row['alert_id']}")["alert"]["alert"]
        assert (row["rule"], row["team"]) == ("detractor", "smb-support")
        assert alert["summary"] == f"NPS 3 from {customer} about delivery (email)"
        assert alert["context"]["topics"] == ["delivery", "returns"]
        assert alert["context"]["high_value"] is None  # alone in its segment: no band yet
        again = runner.invoke(app, ["send", "example", "feedback"], env=env_of(run))
        assert again.exit_code == 0 and customer not in again.output  # fresh ids each run
    finally:
        worker.stop()
