"""docker-compose.yml agrees with the code's defaults (no Docker engine needed)."""

from __future__ import annotations

from pathlib import Path

import yaml

from cxstream.streams.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_are_kafka_and_the_worker() -> None:
    assert set(compose()["services"]) >= {"kafka", "worker"}


def test_kafka_image_is_the_version_of_the_local_broker() -> None:
    image = compose()["services"]["kafka"]["image"]
    assert image == f"apache/kafka:{load_settings({}).kafka_version}"


def test_kafka_is_published_on_the_default_bootstrap_port() -> None:
    defaults = load_settings({})
    kafka = compose()["services"]["kafka"]
    assert f"{defaults.bootstrap_port}:{defaults.bootstrap_port}" in kafka["ports"]
    assert f"localhost:{defaults.bootstrap_port}" in kafka["environment"][
        "KAFKA_ADVERTISED_LISTENERS"]
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def interpolated(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME:?message} and ${NAME} forms, as `docker compose` fills them."""
    import re

    def fill(match: re.Match[str]) -> str:
        name, _, _ = match.group(1).partition(":?")
        return variables[name]

    return re.sub(r"\$\{([^}]+)\}", fill, value)


def test_worker_settings_are_valid_and_use_the_contract_topics() -> None:
    worker = compose()["services"]["worker"]
    token = "a-token-the-operator-sets-of-32-characters"
    env = {k: interpolated(str(v), {"CXSTREAM_API_TOKEN": token})
           for k, v in worker["environment"].items()}
    settings = load_settings(env)  # every variable is a known, valid setting
    assert settings.api_token is not None and settings.api_token.get_secret_value() == token
    assert worker["environment"]["CXSTREAM_API_TOKEN"].startswith("${CXSTREAM_API_TOKEN:?")
    defaults = load_settings({})
    assert settings.input_topics == defaults.input_topics
    assert (settings.topic_alerts, settings.topic_deadletter) == (
        defaults.topic_alerts, defaults.topic_deadletter)
    assert settings.web_port == defaults.web_port
    assert str(defaults.web_port) in [str(p).split(":")[-1] for p in worker["ports"]]
    kafka_listeners = compose()["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert settings.bootstrap_servers in kafka_listeners


def test_worker_image_runs_the_worker_command() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["cxstream", "worker"]' in dockerfile
    assert compose()["services"]["worker"]["build"] == "."


def test_worker_image_copies_every_package_of_the_project() -> None:
    import tomllib

    dockerfile = (ROOT / "Dockerfile").read_text()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]["find"]["include"]
    for pattern in packages:
        name = pattern.rstrip("*")
        assert f"COPY {name} ./{name}" in dockerfile, name


def test_every_long_running_service_has_a_health_check() -> None:
    services = compose()["services"]
    assert set(services) >= {"kafka", "topics", "worker", "simulator", "prometheus",
                             "alertmanager", "alert-receiver", "grafana"}
    one_shot = {name for name, service in services.items()
                if service.get("restart") == "no"}
    assert one_shot == {"topics", "simulator"}
    for name, service in services.items():
        if name not in one_shot:
            assert "healthcheck" in service, name
    assert services["simulator"]["profiles"] == ["simulator"]


def test_kafka_keeps_its_data_and_its_cluster_id_and_avoids_rebalance_storms() -> None:
    import base64

    stack = compose()
    kafka = stack["services"]["kafka"]
    volume = kafka["volumes"][0].split(":")
    assert volume[0] in stack["volumes"] and volume[1] == kafka["environment"]["KAFKA_LOG_DIRS"]
    cluster_id = kafka["environment"]["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16  # a KRaft cluster id
    assert int(kafka["environment"]["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"]) >= 3000


def test_every_required_variable_is_in_the_env_example() -> None:
    import re

    text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text()
                   .splitlines() if line and not line.startswith("#"))
    assert required and required <= set(example)
    assert len(example["CXSTREAM_API_TOKEN"]) >= 32


def test_the_one_shot_services_run_commands_the_cli_has() -> None:
    from typer.testing import CliRunner

    from cxstream.cli.main import app

    services = compose()["services"]
    for name in ("topics", "simulator"):
        command = services[name]["command"]
        assert command[0] == "cxstream"
        words = [word for word in command[1:] if not word.startswith("--")
                 and not word.replace(".", "").isdigit()]
        result = CliRunner().invoke(app, [*words, "--help"])
        assert result.exit_code == 0, (name, result.output)
        for option in (word for word in command[1:] if word.startswith("--")):
            assert option in result.output, (name, option)


def test_docker_compose_accepts_the_file() -> None:
    import shutil
    import subprocess

    import pytest

    if shutil.which("docker") is None or subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False).returncode:
        pytest.skip("docker compose is not installed here (the docker CLI without its "
                    "compose plugin, or no docker); the parse tests above check the file")
    result = subprocess.run(["docker", "compose", "config", "--quiet"], cwd=ROOT,
                            env={"CXSTREAM_API_TOKEN": "t" * 40, "GRAFANA_ADMIN_PASSWORD": "x",
                                 "PATH": "/usr/bin:/bin:/usr/local/bin"},
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
