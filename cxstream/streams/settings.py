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

from cxstream.alerts.config import load_rules
from cxstream.schemas.parsing import InputKind
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.customer import StateRules
from cxstream.scoring.fold import FoldRules
from cxstream.scoring.journey import Journey
from cxstream.scoring.windows import window_specs
from cxstream.streams import settings_groups as group

ENV_PREFIX = "CXSTREAM_"
CONFIG_FILE_VARIABLE = f"{ENV_PREFIX}CONFIG_FILE"
#: variables of cxstream's own test suite (CXSTREAM_TEST_BOOTSTRAP_SERVERS...), not settings
TEST_PREFIX = f"{ENV_PREFIX}TEST_"
#: the command line's own variables (a user's token for `cxstream alerts`), not settings
CLI_VARIABLES = frozenset({f"{ENV_PREFIX}USER_TOKEN"})
_WEBHOOK_URL = re.compile(r"^https?://\S+$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9._\-\[\]:]+:\d{1,5}$")
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._\-]{1,249}$")
MIN_TOKEN_CHARS = 32


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine's loopback (localhost, 127.0.0.0/8, ::1)."""
    return host in {"localhost", "::1", "[::1]"} or host.startswith("127.")


class SettingsError(ValueError):
    """Raised when the configuration is invalid; the message names every bad setting."""


class Settings(BaseSettings, Conventions, StateRules, group.WebhookDelivery, group.EventTime,
               group.SlowProcessingLog, group.HighValueBand, group.LocalBroker, group.Prediction):
    """Everything a worker, the CLI and the local broker need to know.

    The score conventions (``Conventions``) and the customer-state rules (``StateRules``)
    are settings too: their fields are inherited here.
    """

    model_config = SettingsConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    # Kafka cluster
    bootstrap_servers: str = "localhost:9092"
    """Kafka brokers, `host:port[,host:port]`."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """how the clients connect to the brokers."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    """SASL mechanism (required with a SASL protocol)."""
    sasl_username: str | None = None
    """SASL user name (required with SASL)."""
    sasl_password: SecretStr | None = None
    """SASL password (kept secret in logs)."""
    ssl_cafile: Path | None = None
    """CA bundle that verifies the brokers (the file must exist)."""
    ssl_certfile: Path | None = None
    """client certificate for TLS (the file must exist)."""
    ssl_keyfile: Path | None = None
    """client key for TLS (the file must exist)."""
    ssl_keyfile_password: SecretStr | None = None
    """password of the client key (kept secret in logs)."""

    # Topics (names from the event contract) and how they are created
    topic_interactions: str = "cx.interactions"
    """input topic of interactions."""
    topic_feedback: str = "cx.feedback"
    """input topic of survey answers."""
    topic_customers: str = "cx.customers"
    """input topic of CRM profiles."""
    topic_alerts: str = "cx.alerts"
    """output topic of alerts, the record of truth."""
    topic_deadletter: str = "cx.deadletter"
    """output topic of rejected inputs, each with its reason."""
    topic_alert_lifecycle: str = "cx.alert-lifecycle"
    """compacted topic of alert cases, keyed by alert id: every change (raised, acknowledged,
    escalated, resolved...) is a record holding the whole case with its history
    """
    topic_survey_requests: str = "cx.survey-requests"
    """output topic of survey requests for the survey tool, keyed by customer id (the rules
    file's ``surveys`` section says when one is asked for)."""
    partitions: int = Field(default=4, ge=1, le=10_000)
    """partitions of topics cxstream creates; input topics must all have the same count."""
    replication_factor: int | None = Field(default=None, ge=1, le=32)
    """replication of the topics cxstream creates (contract, changelog and internal); unset:
    the cluster's own `default.replication.factor`; refused when above the cluster's brokers
    """

    # Worker
    app_id: str = Field(default="cxstream", min_length=1, max_length=200)
    """consumer group and prefix of internal topics."""
    data_dir: Path = Path(".cxstream/worker")
    """worker's local folder (with `state_store=rocksdb`, the tables' databases)."""
    state_store: Literal["rocksdb", "memory"] = "rocksdb"
    """where the customer states, group tallies and erasure markers are kept: `rocksdb`
    (RocksDB through rocksdict, in `data_dir`: a restart reads only the changelog written
    since, and memory stays bounded) or `memory` (restored from the changelogs at every
    start)
    """
    state_cache_bytes: int = Field(default=256 * 2**20, ge=8 * 2**20, le=2**40)
    """RocksDB's memory in the worker: one block cache shared by every table partition,
    which also holds the write buffers (at most half of it)."""
    bulk_restore: bool = True
    """restore the RocksDB tables' changelogs in bulk (a consumer of their own writes each
    fetch to the database in one batch) when at least `CXSTREAM_BULK_RESTORE_MIN_RECORDS`
    records are left to read; `false`: Faust's recovery reads them one at a time
    """
    bulk_restore_min_records: int = Field(default=10_000, ge=1, le=10**12)
    """the least changelog records left to restore for the bulk read (fewer: Faust reads
    them)."""
    decoded_cache_bytes: int = Field(default=192 * 2**20, ge=2**20, le=2**40)
    """memory for customer states kept decoded between batches (estimated at 7 bytes per byte
    of their table value, as measured; at most 100,000 customers)
    """
    state_write_buffer_bytes: int = Field(default=8 * 2**20, ge=2**20, le=2**32)
    """RocksDB write buffer of each table partition (two per partition at most; all of them
    together within half of `CXSTREAM_STATE_CACHE_BYTES`)."""
    web_host: str = "127.0.0.1"
    """address of the HTTP endpoint (`/metrics`, `/api`)."""
    web_port: int = Field(default=6066, ge=1, le=65535)
    """port of the HTTP endpoint."""
    max_event_bytes: int = Field(default=65_536, ge=1_024, le=10_485_760)
    """larger inputs are dead-lettered as `oversized`; must leave 4,096 bytes of room under
    both the producer request limit and the dead-letter topic's `max.message.bytes` (checked
    at start-up)
    """
    producer_max_request_bytes: int = Field(default=1_048_576, ge=65_536, le=104_857_600)
    """largest produce request of the worker's producers."""
    drain_timeout_seconds: float = Field(default=20, gt=0, le=600)
    """on SIGTERM, how long finishing the batch in hand and committing may take (the process is
    gone 10 s after it at the latest)
    """
    batch_size: int = Field(default=500, ge=1, le=100_000)
    """events per processed batch."""
    batch_timeout_seconds: float = Field(default=0.02, gt=0, le=60)
    """longest wait to fill a batch (a backlog fills batches at once; live traffic waits at
    most this long)
    """
    log_level: Literal["debug", "info", "warn", "error", "crit"] = "info"
    """the worker's log level."""
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    """the worker's event loop."""
    session_timeout_seconds: float = Field(default=30, ge=6, le=300)
    """a worker silent this long loses its partitions to the others."""
    group_instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,200}$")
    """the worker's static member id in its consumer groups (Kafka's `group.instance.id`), unique
    among the workers of `CXSTREAM_APP_ID` and the same across its restarts (e.g. the pod name
    of a StatefulSet): a worker restarted, even after a crash, takes its partitions back at
    once, with no rebalance and no wait for its old session; a worker stopped for good keeps
    its partitions until `CXSTREAM_SESSION_TIMEOUT_SECONDS` has passed. Unset: a dynamic
    member (a clean stop hands its partitions over at once; a restart waits for the group to
    rebalance, and after a crash for the old session to time out)
    """
    stall_seconds: float = Field(default=30, ge=2, le=3600)
    """assigned input partitions with unread messages whose fetch position has not moved this
    long are resumed; if that fails the worker exits with code 75 to be restarted
    """
    web_advertised_host: str | None = None
    """host name other workers use to reach this one."""
    api_token: SecretStr | None = None
    """bearer token of the HTTP API and between workers, at least 32 characters; required when
    `CXSTREAM_WEB_HOST` is not a loopback address; unset, `/api` answers 401
    """
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/\S*)?$")
    """the console's address as people reach it (e.g. `https://cx.example.com`, through a
    proxy); with https the session cookie is `Secure`; unset: the worker's own address
    """
    console_session_hours: float = Field(default=12, gt=0, le=24 * 30)
    """a console sign-in lasts this long (a changed token in the users file ends it at once)."""
    sign_in_attempts_per_minute: int = Field(default=10, ge=1, le=10_000)
    """failed console sign-ins allowed per client address and minute; more answer 429."""
    metrics_group_detail: bool = False
    """export per-group answer counts and per-segment customer counts on `/metrics`."""

    # Alerts
    rules_file: Path | None = None
    """the alert rules file (YAML or TOML)."""
    users_file: Path | None = None
    """YAML file of the console's and API's users: token (or its SHA-256), name, teams, role
    (`agent`, `lead` or `admin`), time zone; unset: only the shared API token
    """
    lexicons_dir: Path | None = None
    """folder of `<language>.yaml` topic lexicons."""
    topic_alerts_deadletter: str = "cx.alerts.deadletter"
    """alerts the webhook refused for good."""
    webhook_url: SecretStr | None = None
    """URL the alerts are posted to (unset: no webhook); a secret (a Slack webhook URL is a
    credential), masked wherever settings are printed."""
    alert_case_retention_days: float = Field(default=30, gt=0, le=3_650)
    """a resolved alert case leaves the `alert_cases` table (a tombstone on
    `cx.alert-lifecycle`) this long after its resolution
    """

    max_group_keys: int = Field(default=1_000, ge=1, le=100_000)
    """distinct keys (segments, channels, touchpoints, stages, agents) each dimension keeps
    per partition; further keys count under `(other)`
    """
    agent_min_answers: int = Field(default=10, ge=1, le=100_000)
    """answers an agent needs in a window to be ranked in `GET /api/scores/agent` (fewer:
    left out, counted as hidden with the reason)."""

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
        "topic_deadletter", "topic_alerts_deadletter", "topic_alert_lifecycle",
        "topic_survey_requests",
    )
    @classmethod
    def _check_topic(cls, value: str) -> str:
        if not _TOPIC_NAME.match(value) or value in {".", ".."}:
            raise ValueError(f"not a valid Kafka topic name: {value!r}")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _WEBHOOK_URL.match(value.get_secret_value()):
            raise ValueError("expected an http:// or https:// URL without spaces "
                             "(the value is a secret and is not repeated here)")
        return value

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile", "rules_file", "users_file")
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
                  self.topic_alerts, self.topic_deadletter, self.topic_alerts_deadletter,
                  self.topic_alert_lifecycle, self.topic_survey_requests]
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

    def input_kinds(self) -> dict[str, InputKind]:
        """Input topic -> the kind of event it carries."""
        return {self.topic_interactions: InputKind.INTERACTION,
                self.topic_feedback: InputKind.FEEDBACK,
                self.topic_customers: InputKind.CUSTOMER}

    def fold_rules(self, journey: Journey | None = None) -> FoldRules:
        """The rules the fold applies (``journey``: the rules file's, if read already)."""
        return FoldRules(
            state=StateRules(**{name: getattr(self, name) for name in StateRules.model_fields}),
            conventions=Conventions(**{name: getattr(self, name)
                                       for name in Conventions.model_fields}),
            windows=window_specs(self.long_window_days),
            allowed_lateness_seconds=self.allowed_lateness_seconds,
            max_clock_skew_seconds=self.max_clock_skew_seconds,
            max_group_keys=self.max_group_keys,
            journey=journey if journey is not None else load_rules(self.rules_file).journey,
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
        if (not name.startswith(ENV_PREFIX) or name == CONFIG_FILE_VARIABLE
                or name.startswith(TEST_PREFIX) or name in CLI_VARIABLES):
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
