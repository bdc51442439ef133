"""One frozen configuration object, loaded from an environment mapping and an optional file.

Every setting is an environment variable ``CXSTREAM_<NAME>`` (for example
``CXSTREAM_BOOTSTRAP_SERVERS``) or a key ``<name>`` in the TOML or YAML file named by
``CXSTREAM_CONFIG_FILE``; the environment wins over the file. Mistakes stop start-up with
one line per mistake that names the variable.
"""

from __future__ import annotations

import re
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cxstream.scoring.conventions import Conventions
from cxstream.scoring.customer import StateRules
from cxstream.scoring.fold import FoldRules
from cxstream.scoring.windows import window_specs

ENV_PREFIX = "CXSTREAM_"
CONFIG_FILE_VARIABLE = f"{ENV_PREFIX}CONFIG_FILE"
_HOST_PORT = re.compile(r"^[A-Za-z0-9._\-\[\]:]+:\d{1,5}$")
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._\-]{1,249}$")


MIN_TOKEN_CHARS = 32


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine's loopback (localhost, 127.0.0.0/8, ::1)."""
    return host in {"localhost", "::1", "[::1]"} or host.startswith("127.")


class SettingsError(ValueError):
    """Raised when the configuration is invalid; the message names every bad setting."""


class Settings(BaseSettings, Conventions, StateRules):
    """Everything a worker, the CLI and the local broker need to know.

    The score conventions (``Conventions``) and the customer-state rules (``StateRules``)
    are settings too: their fields are inherited here.
    """

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    # Kafka cluster
    bootstrap_servers: str = "localhost:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_keyfile_password: SecretStr | None = None

    # Topics (names from the event contract) and how they are created
    topic_interactions: str = "cx.interactions"
    topic_feedback: str = "cx.feedback"
    topic_customers: str = "cx.customers"
    topic_alerts: str = "cx.alerts"
    topic_deadletter: str = "cx.deadletter"
    partitions: int = Field(default=4, ge=1, le=10_000)
    replication_factor: int = Field(default=1, ge=1, le=32)

    # Worker
    app_id: str = Field(default="cxstream", min_length=1, max_length=200)
    data_dir: Path = Path(".cxstream/worker")
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    max_event_bytes: int = Field(default=65_536, ge=1_024, le=10_485_760)
    #: the largest produce request of the worker's producers (a dead-letter copy of an
    #: input must fit: max_event_bytes is checked against it at start-up)
    producer_max_request_bytes: int = Field(default=1_048_576, ge=65_536, le=104_857_600)
    #: on SIGTERM, how long finishing the batch in hand and committing may take
    drain_timeout_seconds: float = Field(default=20, gt=0, le=600)
    batch_size: int = Field(default=500, ge=1, le=100_000)
    batch_timeout_seconds: float = Field(default=0.02, gt=0, le=60)
    log_level: Literal["debug", "info", "warn", "error", "crit"] = "info"
    #: the asyncio event loop of a worker (both of its threads): uvloop is faster
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    #: a worker silent this long is considered dead and its partitions move
    session_timeout_seconds: float = Field(default=30, ge=6, le=300)
    #: input partitions with unread messages whose fetch position has not moved this long
    #: are resumed; if that does not help the worker exits with code 75 to be restarted
    stall_seconds: float = Field(default=30, ge=2, le=3600)
    #: host name other workers use to reach this one (default: web_host, or the machine's
    #: name when web_host is 0.0.0.0)
    web_advertised_host: str | None = None
    #: bearer token required by the HTTP API (customer data) and between workers; at least
    #: 32 characters; required when web_host is not a loopback address; unset: the API
    #: answers 401
    api_token: SecretStr | None = None
    #: export per-group answer counts and per-segment customer counts on /metrics (off:
    #: /metrics carries no customer or group data, only the worker's own health)
    metrics_group_detail: bool = False

    # Alerts
    rules_file: Path | None = None
    lexicons_dir: Path | None = None
    topic_alerts_deadletter: str = "cx.alerts.deadletter"
    webhook_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    #: the Standard Webhooks signing key (``whsec_<base64>``, or any string: its bytes)
    webhook_secret: SecretStr | None = None
    #: during a rotation, the key receivers may still hold: requests carry both signatures
    webhook_previous_secret: SecretStr | None = None
    #: an alert the receiver keeps refusing (5xx, 408, 429, unreachable) is retried until
    #: it is this old (from its created_at), then moved to topic_alerts_deadletter
    webhook_retry_max_age_seconds: float = Field(default=86_400, gt=0)
    webhook_format: Literal["json", "slack"] = "json"
    webhook_timeout_seconds: float = Field(default=5, gt=0, le=120)
    webhook_max_backoff_seconds: float = Field(default=60, gt=0, le=3600)

    #: distinct group keys (segments, channels, touchpoints) each dimension keeps per
    #: partition; answers of further keys count under "(other)"; bounds tallies, windows
    #: and /metrics series whatever producers send
    max_group_keys: int = Field(default=1_000, ge=1, le=100_000)

    # Windows and event time
    long_window_days: int = Field(default=7, ge=2, le=366)
    allowed_lateness_seconds: float = Field(default=86_400, ge=0)
    #: how far an event time may be ahead of the worker's clock or of its Kafka record's
    #: timestamp; beyond it the input is dead-lettered (schema), and no watermark or
    #: customer clock moves past the worker's clock plus this
    max_clock_skew_seconds: float = Field(default=600, ge=0, le=86_400)

    # High-value band
    high_value_share: float = Field(default=0.2, gt=0, lt=1)
    high_value_scope: Literal["segment", "overall"] = "segment"
    high_value_threshold: float | None = Field(default=None, ge=0)
    value_band_refresh_seconds: float = Field(default=30, gt=0)

    # Local broker started by `cxstream broker start` (development, tests, demo)
    kafka_version: str = Field(default="3.9.1", pattern=r"^\d+\.\d+\.\d+$")
    kafka_cache_dir: Path = Path.home() / ".cache" / "cxstream"
    broker_dir: Path = Path(".cxstream/broker")
    broker_heap: str = Field(default="512m", pattern=r"^\d+[kmg]$")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what load_settings() passes in: no hidden reads of os.environ.
        return (init_settings,)

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_servers(cls, value: str) -> str:
        servers = [part.strip() for part in value.split(",")]
        bad = [s for s in servers if not _HOST_PORT.match(s)]
        if not servers or bad:
            raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return ",".join(servers)

    @field_validator(
        "topic_interactions", "topic_feedback", "topic_customers", "topic_alerts",
        "topic_deadletter", "topic_alerts_deadletter",
    )
    @classmethod
    def _check_topic(cls, value: str) -> str:
        if not _TOPIC_NAME.match(value) or value in {".", ".."}:
            raise ValueError(f"not a valid Kafka topic name: {value!r}")
        return value

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile", "rules_file")
    @classmethod
    def _check_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file not found: {value}")
        return value

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        if self.security_protocol.startswith("SASL_"):
            missing = [
                f"{ENV_PREFIX}{name.upper()}"
                for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    f"security_protocol {self.security_protocol} needs " + ", ".join(missing)
                )
        topics = [self.topic_interactions, self.topic_feedback, self.topic_customers,
                  self.topic_alerts, self.topic_deadletter, self.topic_alerts_deadletter]
        if len(set(topics)) != len(topics):
            raise ValueError("the topic names must all be different")
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("webhook_url needs webhook_secret (the signing key)")
        token = self.api_token.get_secret_value() if self.api_token else None
        if token is not None and len(token) < MIN_TOKEN_CHARS:
            raise ValueError(f"api_token must be at least {MIN_TOKEN_CHARS} characters "
                             f"(got {len(token)}); e.g. python -c 'import secrets; "
                             "print(secrets.token_urlsafe(32))'")
        if token is None and not is_loopback(self.web_host):
            raise ValueError(f"web_host {self.web_host} is reachable from other machines: "
                             "set api_token (other workers and API clients send it)")
        return self

    @property
    def input_topics(self) -> tuple[str, str, str]:
        """The contract's input topics: interactions, feedback, customers."""
        return (self.topic_interactions, self.topic_feedback, self.topic_customers)

    def fold_rules(self) -> FoldRules:
        """The rules the stream fold (and the batch recomputation) apply."""
        return FoldRules(
            state=StateRules(**{name: getattr(self, name) for name in StateRules.model_fields}),
            conventions=Conventions(**{name: getattr(self, name)
                                       for name in Conventions.model_fields}),
            windows=window_specs(self.long_window_days),
            allowed_lateness_seconds=self.allowed_lateness_seconds,
            max_clock_skew_seconds=self.max_clock_skew_seconds,
            max_group_keys=self.max_group_keys,
        )

    @property
    def canonical_url(self) -> str:
        """URL other workers use to reach this worker's HTTP endpoint."""
        host = self.web_advertised_host or self.web_host
        if host in {"0.0.0.0", "::"}:
            host = socket.gethostname()
        return f"http://{host}:{self.web_port}"

    @property
    def uses_local_broker(self) -> bool:
        """True when the bootstrap address is this machine's loopback."""
        return is_loopback(self.bootstrap_servers.split(",")[0].rsplit(":", 1)[0])

    @property
    def bootstrap_port(self) -> int:
        """Port of the first bootstrap server (the local broker listens there)."""
        return int(self.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) settings file into a mapping."""
    if not path.is_file():
        raise SettingsError(f"{CONFIG_FILE_VARIABLE}: file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix in {".yaml", ".yml"}:
            data = yaml.safe_load(text) or {}
        else:
            raise SettingsError(f"{CONFIG_FILE_VARIABLE}: use a .toml, .yaml or .yml file: {path}")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise SettingsError(f"{CONFIG_FILE_VARIABLE}: cannot parse {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"{CONFIG_FILE_VARIABLE}: {path} must hold a mapping of settings")
    return data


def load_settings(environ: Mapping[str, str], **overrides: Any) -> Settings:
    """Build the settings from ``environ`` (and its config file), then ``overrides``.

    Raises SettingsError with one line per invalid or unknown setting.
    """
    known = set(Settings.model_fields)
    values: dict[str, Any] = {}
    problems: list[str] = []
    config_path = environ.get(CONFIG_FILE_VARIABLE)
    if config_path:
        for key, value in read_config_file(Path(config_path)).items():
            if key in known:
                values[key] = value
            else:
                problems.append(f"{config_path}: unknown setting {key!r}")
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_FILE_VARIABLE:
            continue
        field = name[len(ENV_PREFIX):].lower()
        if field in known:
            values[field] = value
        else:
            problems.append(f"{name}: unknown setting (typo?)")
    values.update(overrides)
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        problems.extend(_describe(error) for error in exc.errors())
    if problems:
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(problems))
    return settings


def _describe(error: Any) -> str:
    location = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if location:
        return f"{ENV_PREFIX}{location.upper()}: {message}"
    # a rule across settings: name each setting it mentions by its variable
    fields = "|".join(sorted(Settings.model_fields, key=len, reverse=True))
    return re.sub(rf"\b({fields})\b", lambda m: ENV_PREFIX + m.group(1).upper(), message)
