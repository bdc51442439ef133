"""docs/asyncapi.yaml: current, and consistent with the topics, schemas and headers the
code writes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml
from typer.testing import CliRunner

from cxstream.cli.asyncapi import asyncapi
from cxstream.cli.main import app
from cxstream.schemas.parsing import ErrorClass, Rejection
from cxstream.streams.ingest.deadletter_record import SourcePosition, build_deadletter
from cxstream.streams.kafka.clients import contract_topics
from cxstream.streams.settings import load_settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_document_is_current(tmp_path: Path) -> None:
    out = tmp_path / "asyncapi.yaml"
    result = CliRunner().invoke(app, ["schemas", "asyncapi", str(out)], env={
        name: None for name in ("CXSTREAM_BOOTSTRAP_SERVERS", "CXSTREAM_CONFIG_FILE")})
    assert result.exit_code == 0, result.output
    assert out.read_text() == (DOCS / "asyncapi.yaml").read_text(), \
        "regenerate: cxstream schemas asyncapi docs/asyncapi.yaml"


def test_every_topic_is_a_channel_and_every_reference_resolves() -> None:
    settings = load_settings({})
    document = yaml.safe_load((DOCS / "asyncapi.yaml").read_text())
    assert document["asyncapi"].startswith("3.")
    channels = document["channels"]
    assert {channel["address"] for channel in channels.values()} == set(contract_topics(settings))
    for channel in channels.values():
        for message in channel["messages"].values():
            ref = message["payload"].get("$ref")
            if ref is not None:
                assert (DOCS / ref).is_file(), ref
    for name, operation in document["operations"].items():
        assert operation["action"] in {"send", "receive"}, name
        channel = operation["channel"]["$ref"].removeprefix("#/channels/")
        assert channel in channels, name
        for message in operation["messages"]:
            _, _, owner, _, key = message["$ref"].split("/")
            assert owner == channel and key in channels[channel]["messages"], name
    inputs = {channels[op["channel"]["$ref"].split("/")[-1]]["address"]
              for op in document["operations"].values() if op["action"] == "receive"}
    assert inputs == set(settings.input_topics)


def test_the_dead_letter_headers_are_those_the_code_writes() -> None:
    document = asyncapi(load_settings({}))
    (message,) = document["channels"]["deadletter"]["messages"].values()
    documented = set(message["headers"]["properties"])
    at = datetime(2026, 12, 2, tzinfo=UTC)
    source = SourcePosition("cx.feedback", 1, 9)
    for record in (build_deadletter(b"k", b"{", source, Rejection(ErrorClass.JSON, "x"), at),
                   build_deadletter(b"k" * 2000, b"x" * 100, source,
                                    Rejection(ErrorClass.OVERSIZED, "x"), at, 10)):
        assert {name for name, _ in record.headers} <= documented
    assert message["headers"]["properties"]["cx.error.class"]["enum"] == [
        error.value for error in ErrorClass]
