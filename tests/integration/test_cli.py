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

    lines = [json.dumps(feedback(event_id=f"e{i}", customer_id=f"c{i}")) for i in range(4)]
    path = tmp_path / "feedback.jsonl"
    path.write_text("\n".join([*lines, "not json"]) + "\n")
    sent = runner.invoke(app, ["send", "file", str(path), "--topic",
                               isolated_settings.topic_feedback], env=env_of(isolated))
    assert sent.exit_code == 0, sent.output
    stored = asyncio.run(read_topic(isolated_settings, isolated_settings.topic_feedback))
    assert sorted(r.key for r in stored if r.key) == [b"c0", b"c1", b"c2", b"c3"]
    assert [r.value for r in stored if r.key is None] == [b"not json"]




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
