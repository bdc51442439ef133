"""Command-line conventions: --version, -b/--config on every command that reaches Kafka,
-o json on every command that prints data, choices checked before any network call, the
config commands, and the generated configuration reference."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cxstream
from cxstream.cli.main import app
from cxstream.cli.reference import configuration_reference
from cxstream.streams.settings import Settings, load_settings
from testkit.support import free_port

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
KAFKA_COMMANDS = [["broker", "start"], ["broker", "stop"], ["broker", "status"],
                  ["topics", "create"], ["worker"], ["send", "sample"], ["send", "file"],
                  ["deadletter", "show"], ["recompute"], ["simulate"], ["replay"], ["demo"]]
DATA_COMMANDS = [["broker", "status"], ["topics", "create"], ["deadletter", "show"],
                 ["customer", "show"], ["customer", "erase"], ["scores"], ["recompute"],
                 ["config", "check"]]


def help_of(command: list[str]) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return re.sub(r"\s+", " ", result.output)


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"cxstream {cxstream.__version__}"


@pytest.mark.parametrize("command", KAFKA_COMMANDS, ids=" ".join)
def test_every_kafka_command_takes_the_brokers_and_a_settings_file(command: list[str]) -> None:
    text = help_of(command)
    assert "-b" in text and "--bootstrap-servers" in text
    assert "env var: CXSTREAM_BOOTSTRAP_SERVERS" in text
    assert "--config" in text and "env var: CXSTREAM_CONFIG_FILE" in text


@pytest.mark.parametrize("command", DATA_COMMANDS, ids=" ".join)
def test_every_command_that_prints_data_has_json_output(command: list[str]) -> None:
    text = help_of(command)
    assert "-o" in text and "--output" in text and "text|json" in text


@pytest.mark.parametrize("arguments, wrong", [
    (["scores", "region"], "region"),
    (["scores", "segment", "--metric", "nss"], "nss"),
    (["scores", "segment", "--window", "30d"], "30d"),
    (["scores", "segment", "--at", "yesterday"], "yesterday"),
    (["scores", "segment", "--answers"], "KEY"),
])
def test_choices_are_refused_before_any_request(arguments: list[str], wrong: str) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # a request would fail with "cannot reach"
    result = runner.invoke(app, [*arguments, "--url", nobody])
    assert result.exit_code == 2, result.output
    assert wrong in result.output and "cannot reach" not in result.output


def test_the_brokers_option_wins_over_the_environment(tmp_path: Path) -> None:
    result = runner.invoke(app, ["broker", "status", "-o", "json", "-b", "127.0.0.1:19092"],
                           env={"CXSTREAM_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
                                "CXSTREAM_BROKER_DIR": str(tmp_path)})
    assert result.exit_code == 3  # not running
    assert json.loads(result.stdout)["running"] is False


def test_config_check_masks_secrets_and_reads_the_settings_file(tmp_path: Path) -> None:
    settings_file = tmp_path / "cxstream.toml"
    settings_file.write_text('partitions = 6\napi_token = "a-very-secret-token-of-32-chars-x"\n')
    result = runner.invoke(app, ["config", "check", "--config", str(settings_file),
                                 "-o", "json"])
    assert result.exit_code == 0, result.output
    effective = json.loads(result.stdout)
    assert effective["partitions"] == 6
    assert effective["api_token"] == "**********"
    assert "a-very-secret" not in result.output


def test_config_check_refuses_a_broken_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("detractor: {nps_max: eleven}\n")
    result = runner.invoke(app, ["config", "check"], env={"CXSTREAM_RULES_FILE": str(rules)})
    assert result.exit_code == 2
    assert "rules.yaml" in result.output


def test_the_test_suites_variables_are_not_taken_for_settings() -> None:
    settings = load_settings({"CXSTREAM_TEST_BOOTSTRAP_SERVERS": "elsewhere:9092",
                              "CXSTREAM_PARTITIONS": "2"})
    assert settings.partitions == 2 and settings.bootstrap_servers == "localhost:9092"


def test_the_configuration_reference_is_current() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == configuration_reference(), (
        "regenerate it: cxstream config reference > docs/configuration.md")


def test_the_reference_names_every_setting_with_its_meaning() -> None:
    text = configuration_reference()
    for name, field in Settings.model_fields.items():
        assert f"`CXSTREAM_{name.upper()}`" in text
        assert field.description, name


def test_config_check_masks_the_webhook_url_and_shows_the_value_bounds() -> None:
    url = "https://hooks.slack.test/services/T000/B000/a-secret-path"
    env = {"CXSTREAM_WEBHOOK_URL": url, "CXSTREAM_WEBHOOK_SECRET": "whsec_c2VjcmV0c2VjcmV0"}
    result = runner.invoke(app, ["config", "check", "-o", "json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["webhook_url"] == "**********"
    assert "a-secret-path" not in result.output
    result = runner.invoke(app, ["config", "check"], env=env, terminal_width=200)
    assert "a-secret-path" not in result.output
    assert "survey_memory" in result.output and "hot state" in result.output


def test_config_check_refuses_caps_under_which_a_value_outgrows_the_request_limit() -> None:
    result = runner.invoke(app, ["config", "check"],
                           env={"CXSTREAM_SEEN_EVENT_IDS_KEPT": "100000"})
    assert result.exit_code == 2
    assert "CXSTREAM_SEEN_EVENT_IDS_KEPT" in result.output
    assert "CXSTREAM_PRODUCER_MAX_REQUEST_BYTES" in result.output


def test_the_cli_docs_and_api_agree_on_the_score_dimensions() -> None:
    from cxstream.cli.commands.scores import Dimension
    from cxstream.scoring.groups import DIMENSIONS

    assert tuple(d.value for d in Dimension) == DIMENSIONS
    api = " ".join((ROOT / "docs" / "api.md").read_text().split())
    sentence = api[api.index("`dimension` is "):].split(";")[0]
    assert all(f"`{d}`" in sentence for d in DIMENSIONS), sentence
    text = help_of(["scores"])
    assert all(d in text for d in DIMENSIONS)
