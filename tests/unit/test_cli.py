"""The cxstream command: help, schema export, clear errors for bad settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxstream.cli.main import app

runner = CliRunner()


def test_help_lists_every_subcommand() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("broker", "worker", "schemas", "send", "topics", "deadletter", "demo"):
        assert command in result.output
    broker = runner.invoke(app, ["broker", "--help"])
    for command in ("fetch", "start", "stop", "status"):
        assert command in broker.output


def test_schemas_export_writes_files(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schemas", "export", str(tmp_path)])
    assert result.exit_code == 0, result.output
    schema = json.loads((tmp_path / "cx.interactions.schema.json").read_text())
    assert "outcome" in schema["properties"]


def test_invalid_setting_exits_2_naming_the_variable(tmp_path: Path) -> None:
    result = runner.invoke(app, ["broker", "status"],
                           env={"CXSTREAM_WEB_PORT": "http", "CXSTREAM_BROKER_DIR": str(tmp_path)})
    assert result.exit_code == 2
    assert "CXSTREAM_WEB_PORT" in result.output


def test_broker_status_exits_3_when_no_broker_runs(tmp_path: Path) -> None:
    result = runner.invoke(app, ["broker", "status"], env={"CXSTREAM_BROKER_DIR": str(tmp_path)})
    assert result.exit_code == 3
    assert "not running" in result.output


def test_broker_start_refuses_a_remote_address(tmp_path: Path) -> None:
    result = runner.invoke(app, ["broker", "start"],
                           env={"CXSTREAM_BOOTSTRAP_SERVERS": "kafka.example.com:9092",
                                "CXSTREAM_BROKER_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert "not a loopback address" in result.output


def test_worker_refuses_an_invalid_rules_file_before_touching_kafka(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("detractor:\n  nps_max: 12\n")
    result = runner.invoke(app, ["worker"], env={"CXSTREAM_RULES_FILE": str(rules),
                                                 "CXSTREAM_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.exit_code == 1
    assert "detractor.nps_max" in result.output and str(rules) in result.output


def test_worker_needs_a_secret_with_a_webhook() -> None:
    result = runner.invoke(app, ["worker"],
                           env={"CXSTREAM_WEBHOOK_URL": "http://127.0.0.1:9/hook"})
    assert result.exit_code == 2
    assert "CXSTREAM_WEBHOOK_SECRET" in result.output


def test_free_port_never_hands_out_a_port_twice() -> None:
    from cxstream.cli.processes import free_port

    ports = [free_port() for _ in range(500)]  # the kernel would reuse some of these
    assert len(set(ports)) == len(ports)


def test_a_worker_log_is_shown_from_its_crash_report_else_from_its_end() -> None:
    from cxstream.cli.processes import log_excerpt

    lines = "".join(f"line {n}\n" for n in range(1_000))
    assert log_excerpt(lines, 100) == lines[-100:]
    crash = "Fatal Python error: Segmentation fault\n\nThread 0x7f (most recent...)\n"
    crashed = lines + crash + lines
    shown = log_excerpt(crashed, 80)
    assert shown.startswith("Fatal Python error: Segmentation fault") and len(shown) == 80


def test_a_busy_worker_is_asked_again_as_its_retry_after_says_and_its_last_answer_kept(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A 503 with Retry-After (restoring, taking over, stopping) is asked again; any
    other answer, or a 503 without the header, is returned at once."""
    import httpx

    from cxstream.streams.web import client as main

    waits: list[float] = []
    monkeypatch.setattr("time.sleep", waits.append)
    answers = iter([httpx.Response(503, headers={"Retry-After": "2"}),
                    httpx.Response(503, headers={"Retry-After": "0.5"}),
                    httpx.Response(200, json={"ok": True})])
    assert main.busy_retrying(lambda: next(answers)).status_code == 200
    assert waits == [2.0, 0.5]
    plain = httpx.Response(503)
    assert main.busy_retrying(lambda: plain) is plain
    monkeypatch.setattr(main, "BUSY_WAIT_SECONDS", 0.0)
    busy = httpx.Response(503, headers={"Retry-After": "1"})
    assert main.busy_retrying(lambda: busy) is busy  # gave up: the 503 is shown
