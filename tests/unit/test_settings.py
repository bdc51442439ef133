"""Settings: defaults, environment, config files, and one clear line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxstream.streams.kafka.faust_app import FaustEnvironmentError, check_faust_environment
from cxstream.streams.settings import SettingsError, load_settings


def test_defaults_match_the_contract() -> None:
    settings = load_settings({})
    assert settings.bootstrap_servers == "localhost:9092"
    assert settings.input_topics == ("cx.interactions", "cx.feedback", "cx.customers")
    assert (settings.topic_alerts, settings.topic_deadletter) == ("cx.alerts", "cx.deadletter")


def test_environment_sets_values() -> None:
    settings = load_settings({"CXSTREAM_BOOTSTRAP_SERVERS": "k1:9092, k2:9093",
                              "CXSTREAM_PARTITIONS": "12", "HOME": "/root"})
    assert settings.bootstrap_servers == "k1:9092,k2:9093"
    assert settings.partitions == 12


def test_settings_are_frozen() -> None:
    settings = load_settings({})
    with pytest.raises(Exception, match="frozen"):
        settings.partitions = 3  # type: ignore[misc]


def test_each_mistake_is_named_in_one_message() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"CXSTREAM_WEB_PORT": "99999", "CXSTREAM_PARTITIONS": "zero",
                       "CXSTREAM_BOOTSTRAP_SERVERS": "no-port"})
    message = str(caught.value)
    for name in ("CXSTREAM_WEB_PORT", "CXSTREAM_PARTITIONS", "CXSTREAM_BOOTSTRAP_SERVERS"):
        assert name in message
    assert message.count("\n") == 3


def test_unknown_variable_is_reported_as_a_likely_typo() -> None:
    with pytest.raises(SettingsError, match="CXSTREAM_BOOTSTRAP_SERVER: unknown setting"):
        load_settings({"CXSTREAM_BOOTSTRAP_SERVER": "localhost:9092"})


def test_sasl_needs_mechanism_user_and_password() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"CXSTREAM_SECURITY_PROTOCOL": "SASL_SSL"})
    message = str(caught.value)
    assert "CXSTREAM_SASL_MECHANISM" in message and "CXSTREAM_SASL_PASSWORD" in message


def test_sasl_password_is_secret() -> None:
    settings = load_settings({"CXSTREAM_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                              "CXSTREAM_SASL_MECHANISM": "SCRAM-SHA-512",
                              "CXSTREAM_SASL_USERNAME": "svc", "CXSTREAM_SASL_PASSWORD": "s3cret"})
    assert "s3cret" not in repr(settings)
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == "s3cret"


def test_tls_files_must_exist(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="CXSTREAM_SSL_CAFILE: file not found"):
        load_settings({"CXSTREAM_SECURITY_PROTOCOL": "SSL",
                       "CXSTREAM_SSL_CAFILE": str(tmp_path / "missing.pem")})


def test_topic_names_must_be_valid_and_distinct() -> None:
    with pytest.raises(SettingsError, match="CXSTREAM_TOPIC_FEEDBACK"):
        load_settings({"CXSTREAM_TOPIC_FEEDBACK": "bad topic"})
    with pytest.raises(SettingsError, match="must all be different"):
        load_settings({"CXSTREAM_TOPIC_ALERTS": "cx.deadletter"})


def test_toml_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "cx.toml"
    path.write_text('partitions = 6\nweb_port = 7000\n')
    settings = load_settings({"CXSTREAM_CONFIG_FILE": str(path), "CXSTREAM_WEB_PORT": "7001"})
    assert (settings.partitions, settings.web_port) == (6, 7001)


def test_yaml_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "cx.yaml"
    path.write_text("topic_alerts: team.alerts\n")
    assert load_settings({"CXSTREAM_CONFIG_FILE": str(path)}).topic_alerts == "team.alerts"


def test_bad_config_files_are_explained(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="file not found"):
        load_settings({"CXSTREAM_CONFIG_FILE": str(tmp_path / "none.toml")})
    broken = tmp_path / "broken.toml"
    broken.write_text("partitions = = 3")
    with pytest.raises(SettingsError, match="cannot parse"):
        load_settings({"CXSTREAM_CONFIG_FILE": str(broken)})
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("partitons: 3\n")
    with pytest.raises(SettingsError, match="unknown setting 'partitons'"):
        load_settings({"CXSTREAM_CONFIG_FILE": str(unknown)})


def test_faust_variables_that_would_override_settings_stop_start_up() -> None:
    with pytest.raises(FaustEnvironmentError, match="BROKER_URL"):
        check_faust_environment({"BROKER_URL": "kafka://elsewhere:9092", "HOME": "/"})
    check_faust_environment({"HOME": "/", "CXSTREAM_BOOTSTRAP_SERVERS": "x:1"})


def test_the_event_loop_is_uvloop_unless_asyncio_is_asked_for() -> None:
    assert load_settings({}).event_loop == "uvloop"
    assert load_settings({"CXSTREAM_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    with pytest.raises(SettingsError, match="CXSTREAM_EVENT_LOOP"):
        load_settings({"CXSTREAM_EVENT_LOOP": "trio"})


def test_a_worker_reachable_from_other_machines_needs_a_token() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"CXSTREAM_WEB_HOST": "0.0.0.0"})
    assert "CXSTREAM_WEB_HOST" in str(caught.value) and "CXSTREAM_API_TOKEN" in str(caught.value)
    token = "x" * 32
    assert load_settings({"CXSTREAM_WEB_HOST": "0.0.0.0", "CXSTREAM_API_TOKEN": token})
    for loopback in ("127.0.0.1", "localhost", "::1"):
        assert load_settings({"CXSTREAM_WEB_HOST": loopback}).api_token is None


def test_short_tokens_are_refused() -> None:
    with pytest.raises(SettingsError, match="CXSTREAM_API_TOKEN must be at least 32"):
        load_settings({"CXSTREAM_API_TOKEN": "x" * 31})


def test_max_event_bytes_beyond_the_producer_limit_is_named() -> None:
    from cxstream.streams.ingest.deadletter_record import message_limit_problem

    settings = load_settings({"CXSTREAM_MAX_EVENT_BYTES": "2000000",
                              "CXSTREAM_PRODUCER_MAX_REQUEST_BYTES": "1048576"})
    problem = message_limit_problem(settings.max_event_bytes,
                                    settings.producer_max_request_bytes, "cx.deadletter", None)
    assert problem is not None and "CXSTREAM_MAX_EVENT_BYTES=2000000" in problem


def test_a_group_instance_id_is_passed_as_set_and_a_malformed_one_is_named() -> None:
    assert load_settings({}).group_instance_id is None  # a dynamic member unless set
    assert load_settings({"CXSTREAM_GROUP_INSTANCE_ID": "cxstream-worker-2"}
                         ).group_instance_id == "cxstream-worker-2"
    for bad in ("two words", "", "x" * 201, "é"):
        with pytest.raises(SettingsError, match="CXSTREAM_GROUP_INSTANCE_ID"):
            load_settings({"CXSTREAM_GROUP_INSTANCE_ID": bad})
