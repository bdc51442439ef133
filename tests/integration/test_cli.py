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
    assert f"{isolated_settings.topic_feedback}: 3 partitions" in created.output

    lines = [json.dumps(feedback(event_id=f"e{i}", customer_id=f"c{i}")) for i in range(4)]
    path = tmp_path / "feedback.jsonl"
    path.write_text("\n".join([*lines, "not json"]) + "\n")
    sent = runner.invoke(app, ["send", "file", str(path), "--topic",
                               isolated_settings.topic_feedback], env=env_of(isolated))
    assert sent.exit_code == 0, sent.output
    stored = asyncio.run(read_topic(isolated_settings, isolated_settings.topic_feedback))
    assert sorted(r.key for r in stored if r.key) == [b"c0", b"c1", b"c2", b"c3"]
    assert [r.value for r in stored if r.key is None] == [b"not json"]




def test_the_replication_factor_follows_the_cluster_and_more_than_its_brokers_is_refused(
        isolated: dict[str, str], isolated_settings: Settings) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from cxstream.streams.kafka.clients import aiokafka_options

    refused = runner.invoke(app, ["topics", "create"],
                            env={**env_of(isolated), "CXSTREAM_REPLICATION_FACTOR": "3"})
    assert refused.exit_code != 0
    assert "CXSTREAM_REPLICATION_FACTOR=3 is more than the 1 broker(s)" in refused.output

    async def listed() -> list[str]:
        admin = AIOKafkaAdminClient(**aiokafka_options(isolated_settings))
        await admin.start()
        try:
            return list(await admin.list_topics())
        finally:
            await admin.close()

    assert isolated_settings.topic_feedback not in asyncio.run(listed())  # nothing made
    created = runner.invoke(app, ["topics", "create"], env=env_of(isolated))
    assert created.exit_code == 0, created.output  # unset: the broker's default (1 here)
