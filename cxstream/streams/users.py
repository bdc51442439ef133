"""Who is asking: the users of the console and the API, from the users file.

    users:
      - name: alice
        token_sha256: 5e884898da28...   # or token: <the token itself>
        teams: [key-accounts]
        role: agent                     # agent: own and teams' alerts and customers;
                                        # lead: all of them; admin: also erases
        timezone: Europe/Paris          # times in the console (default: the browser's)

The shared API token (CXSTREAM_API_TOKEN) keeps working for machines: it acts as "api"
and sees every alert. Tokens are compared by their SHA-256 in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MIN_USER_TOKEN_CHARS = 16
COOKIE = "cx_token"


class UsersError(ValueError):
    """The users file is invalid; the message names the file and the entry."""


class UserEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128)
    token: str | None = Field(default=None, min_length=MIN_USER_TOKEN_CHARS)
    token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    teams: list[str] = []
    #: agent: own and teams' alerts and customers; lead: all of them; admin: all of them,
    #: and may erase a customer
    role: Literal["agent", "lead", "admin"] = "agent"
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _one_token(self) -> UserEntry:
        if (self.token is None) == (self.token_sha256 is None):
            raise ValueError("give exactly one of token and token_sha256")
        return self

    @property
    def digest(self) -> str:
        if self.token_sha256 is not None:
            return self.token_sha256.lower()
        return hash_token(self.token or "")


class UsersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    users: list[UserEntry] = []

    @model_validator(mode="after")
    def _unique(self) -> UsersFile:
        names = [user.name for user in self.users]
        if len(set(names)) != len(names):
            raise ValueError("user names must be unique")
        digests = [user.digest for user in self.users]
        if len(set(digests)) != len(digests):
            raise ValueError("two users have the same token")
        return self


@dataclass(frozen=True)
class Principal:
    """Who a request acts as."""

    name: str
    teams: tuple[str, ...] = ()
    role: str = "agent"
    timezone: str | None = None
    machine: bool = False

    @property
    def sees_all(self) -> bool:
        return self.machine or self.role in {"lead", "admin"}

    @property
    def may_erase(self) -> bool:
        """Erasure (right to be forgotten): the shared token, or a user of role admin."""
        return self.machine or self.role == "admin"

    def can_see(self, owner: str, team: str | None) -> bool:
        """Own alerts, the teams' alerts, or all of them for a lead (or a machine)."""
        return (self.sees_all or owner == self.name or owner in self.teams
                or (team is not None and team in self.teams))


MACHINE = Principal(name="api", role="lead", machine=True)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Users:
    """Finds the principal of a token."""

    def __init__(self, entries: list[UserEntry], api_token: str | None) -> None:
        self.by_digest = {entry.digest: entry for entry in entries}
        self.by_name = {entry.name: entry for entry in entries}
        self.api_digest = hash_token(api_token) if api_token else None

    def principal(self, token: str | None) -> Principal | None:
        """The shared token's machine, or the user whose token this is."""
        if not token:
            return None
        if self.api_digest is not None and hmac.compare_digest(hash_token(token),
                                                               self.api_digest):
            return MACHINE
        entry = self.entry_of(token)
        return None if entry is None else self.principal_of_entry(entry)

    def entry_of(self, token: str) -> UserEntry | None:
        digest = hash_token(token)
        found = None
        for known, entry in self.by_digest.items():  # every entry compared: constant time
            if hmac.compare_digest(digest, known):
                found = entry
        return found

    def entry_named(self, name: str) -> UserEntry | None:
        return self.by_name.get(name)

    @staticmethod
    def principal_of_entry(entry: UserEntry) -> Principal:
        return Principal(entry.name, tuple(entry.teams), entry.role, entry.timezone)


def load_users(path: Path | None, api_token: str | None) -> Users:
    """Read and validate the users file (none: only the shared API token)."""
    if path is None:
        return Users([], api_token)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsersError(f"CXSTREAM_USERS_FILE: cannot read {path}: {exc}") from exc
    try:
        parsed = UsersFile.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc']) or 'file'}: "
                 f"{str(e['msg']).removeprefix('Value error, ')}" for e in exc.errors()]
        raise UsersError("invalid users file:\n  " + "\n  ".join(lines)) from exc
    return Users(parsed.users, api_token)
