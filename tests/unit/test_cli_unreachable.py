"""Every command that talks to Kafka or a worker's API, pointed at a closed port, says so
in one line naming the address, the setting and the flag, and exits 3 (docs/cli.md),
with no traceback. Two workers on one data directory, and a worker on a port in use,
are refused naming the directory and the port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from cxstream.cli.main import app
from cxstream.cli.options import EXIT_UNREACHABLE
from cxstream.streams.settings import load_settings
from cxstream.streams.worker import WorkerStartError, check_web_port, held_data_dir
from testkit.support import free_port

runner = CliRunner()

#: the arguments each command needs besides the address (a file made in the test)
KAFKA_COMMANDS = {
    "topics create": [], "send sample": [], "send example": [],
    "send file": ["{jsonl}", "--topic", "cx.feedback"],
    "deadletter show": [], "recompute": [], "simulate": ["--customers", "50"],
    "replay": ["{jsonl}"], "rules backtest": ["--rules", "{rules}"],
    "surveys backtest": ["--rules", "{rules}"], "model train": ["--out", "{model}"],
}
API_COMMANDS = {
    "scores": ["segment"], "priorities": [], "customer show": ["c1"],
    "customer erase": ["c1", "--yes"], "alerts list": [], "alerts show": ["a1"],
    "alerts ack": ["a1"], "alerts resolve": ["a1", "--category", "fixed"],
    "alerts assign": ["a1", "--to", "ann"],
    "alerts note": ["a1", "a note"], "alerts snooze": ["a1", "--hours", "1"],
}
#: commands with -b that are not asked here, and why
ELSEWHERE = {
    "worker": "a process of its own: test_a_worker_without_a_broker_exits_3",
    "demo": "starts its own broker when none answers (tests/integration/test_demo.py)",
    "broker start": "starts the broker at that address", "broker stop": "stops it",
    "broker status": "answers exit 3 when no broker runs (tests/integration/test_cli.py)",
}


def commands_with(option: str) -> set[str]:
    root = typer.main.get_command(app)
    found: set[str] = set()

    def walk(command: Any, prefix: list[str]) -> None:
        if hasattr(command, "list_commands"):
            context = type(root).context_class(command)
            for name in command.list_commands(context):
                walk(command.get_command(context, name), [*prefix, name])
        elif any(option in parameter.opts for parameter in command.params):
            found.add(" ".join(prefix))

    walk(root, [])
    return found


def test_every_command_that_reaches_kafka_or_a_worker_is_asked_here() -> None:
    assert commands_with("-b") == set(KAFKA_COMMANDS) | set(ELSEWHERE) | {"recompute"}
    assert commands_with("--url") == set(API_COMMANDS) | {"recompute"}


def filled(arguments: list[str], tmp_path: Path) -> list[str]:
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text(json.dumps({"topic": "feedback", "at": 0, "key": "c1",
                                 "value": "{}"}) + "\n")
    rules = tmp_path / "rules.toml"
    rules.write_text("")
    return [a.format(jsonl=jsonl, rules=rules, model=tmp_path / "model.json") for a in arguments]


def assert_one_line(output: str, *names: str) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output
    assert len(lines) == 1, output
    for name in names:
        assert name in lines[0], (name, lines[0])


@pytest.mark.parametrize("command", sorted(KAFKA_COMMANDS))
def test_a_kafka_command_at_a_closed_port_names_the_address_and_exits_3(
        command: str, tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    arguments = [*command.split(), *filled(KAFKA_COMMANDS[command], tmp_path), "-b", address]
    result = runner.invoke(app, arguments, env={"CXSTREAM_DATA_DIR": str(tmp_path)})
    assert result.exit_code == EXIT_UNREACHABLE, (result.output, result.exception)
    assert_one_line(result.output, address, "CXSTREAM_BOOTSTRAP_SERVERS",
                    "-b/--bootstrap-servers")


@pytest.mark.parametrize("command", sorted(API_COMMANDS))
def test_an_api_command_at_a_closed_port_names_the_address_and_exits_3(command: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, [*command.split(), *API_COMMANDS[command], "--url", url],
                           env={"CXSTREAM_API_TOKEN": "t" * 32})
    assert result.exit_code == EXIT_UNREACHABLE, (result.output, result.exception)
    assert_one_line(result.output, url, "--url", "CXSTREAM_WEB_PORT")


def test_a_worker_without_a_broker_exits_3(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "cxstream.cli.main", "worker", "-b", address,
         "--data-dir", str(tmp_path), "--web-port", str(free_port())],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "CXSTREAM_REPLICATION_FACTOR": "1"})
    assert done.returncode == EXIT_UNREACHABLE, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert f"cannot reach Kafka at {address}" in done.stderr


def test_a_data_directory_held_by_another_process_is_refused_naming_it(
        tmp_path: Path) -> None:
    settings = load_settings({}, data_dir=str(tmp_path))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, filelock; l = filelock.FileLock(sys.argv[1]); "
         "l.acquire(); open(sys.argv[1], 'w').write('4242'); print('held', flush=True); "
         "sys.stdin.read()", str(tmp_path / "worker.lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(WorkerStartError) as refused:
            held_data_dir(settings)
        assert str(tmp_path) in str(refused.value) and "CXSTREAM_DATA_DIR" in str(refused.value)
    finally:
        holder.communicate("")
    with held_data_dir(settings):  # free again once the holder is gone
        assert (tmp_path / "worker.lock").read_text() == str(os.getpid())


def test_a_port_in_use_is_refused_naming_the_port_and_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings({}, web_port=str(port))
        with pytest.raises(WorkerStartError) as refused:
            check_web_port(settings)
    assert f"127.0.0.1:{port}" in str(refused.value)
    assert "--web-port" in str(refused.value) and "CXSTREAM_WEB_PORT" in str(refused.value)
    check_web_port(settings)  # closed: free again
