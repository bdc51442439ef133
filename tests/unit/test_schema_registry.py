"""Kafka shops with Confluent's Schema Registry: `cxstream schemas register` against a
small fake registry (no registry server runs here), and inputs framed by Confluent's
JSON Schema serializer parsed like plain ones."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from cxstream.cli.main import app
from cxstream.schemas.events import Feedback
from cxstream.schemas.examples import FEEDBACK
from cxstream.schemas.export import json_schema
from cxstream.schemas.parsing import ErrorClass, InputKind, Rejection, parse_input, unframe


class FakeRegistry:
    """What `schemas register` uses of the registry's REST API, with BACKWARD checked the
    simple way: a new version may not drop a property nor require a new one."""

    def __init__(self) -> None:
        self.versions: dict[str, list[dict[str, Any]]] = {}  # subject -> registered
        self.config: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []
        self.next_id = 1
        self.ids: dict[str, int] = {}  # schema text -> id

    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        self.calls.append((method, path))
        parts = path.strip("/").split("/")
        if method == "PUT" and parts[0] == "config":
            self.config[parts[1]] = body["compatibility"]
            return 200, {"compatibility": body["compatibility"]}
        if method == "POST" and parts[0] == "subjects" and parts[2] == "versions":
            subject, text = parts[1], body["schema"]
            if body.get("schemaType") != "JSON":
                return 422, {"error_code": 42201, "message": "only JSON here"}
            schema = json.loads(text)
            earlier = self.versions.setdefault(subject, [])
            if earlier and self.config.get(subject) == "BACKWARD" and text not in self.ids:
                last = earlier[-1]
                dropped = set(last.get("properties", {})) - set(schema.get("properties", {}))
                required = set(schema.get("required", [])) - set(last.get("required", []))
                if dropped or required:
                    return 409, {"error_code": 409, "message": "Schema being registered "
                                 f"is incompatible: dropped {sorted(dropped)}, newly "
                                 f"required {sorted(required)}"}
            if text not in self.ids:
                self.ids[text] = self.next_id
                self.next_id += 1
                earlier.append(schema)
            return 200, {"id": self.ids[text]}
        return 404, {"error_code": 40401, "message": f"no {method} {path}"}


@pytest.fixture
def registry() -> Iterator[tuple[FakeRegistry, str]]:
    fake = FakeRegistry()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            assert self.headers["Content-Type"] == "application/vnd.schemaregistry.v1+json"
            status, answer = fake.handle(self.command, self.path, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_PUT = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def register(url: str, *extra: str) -> Any:
    return CliRunner().invoke(app, ["schemas", "register", "--registry-url", url, *extra],
                              env={"CXSTREAM_TOPIC_FEEDBACK": "shop.cx.feedback"})


def test_every_topic_is_registered_as_json_with_backward_compatibility(
        registry: tuple[FakeRegistry, str]) -> None:
    fake, url = registry
    result = register(url, "-o", "json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    subjects = [row["subject"] for row in answer]
    assert "shop.cx.feedback-value" in subjects and "cx.customers-value" in subjects
    assert len(subjects) == 6 and len({row["id"] for row in answer}) == 6
    assert all(fake.config[s] == "BACKWARD" for s in subjects)
    # the compatibility is set before the first version of each subject
    for subject in subjects:
        put = fake.calls.index(("PUT", f"/config/{subject}"))
        post = fake.calls.index(("POST", f"/subjects/{subject}/versions"))
        assert put < post
    (feedback,) = fake.versions["shop.cx.feedback-value"]
    assert feedback == json_schema("cx.feedback.schema.json")
    again = register(url, "-o", "json")  # the same schemas: the same ids, no new version
    assert json.loads(again.output) == answer
    assert all(len(versions) == 1 for versions in fake.versions.values())


def test_an_incompatible_subject_stops_the_command_naming_it(
        registry: tuple[FakeRegistry, str]) -> None:
    fake, url = registry
    fake.config["cx.customers-value"] = "BACKWARD"
    fake.versions["cx.customers-value"] = [{"properties": {"loyalty_tier": {}},
                                            "required": []}]
    result = register(url)
    assert result.exit_code == 1
    assert "cx.customers-value" in result.output and "incompatible" in result.output


def test_an_unreachable_registry_is_a_clear_error() -> None:
    result = register("http://127.0.0.1:9")
    assert result.exit_code == 1 and "cannot reach the schema registry" in result.output


# -- framed inputs -------------------------------------------------------------------

def framed(schema_id: int, payload: bytes) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + payload


def test_a_framed_input_is_parsed_like_a_plain_one() -> None:
    plain = json.dumps(FEEDBACK).encode()
    key = FEEDBACK["customer_id"].encode()
    assert unframe(framed(7, plain)) == (plain, 7)
    assert unframe(plain) == (plain, None)
    one = parse_input(InputKind.FEEDBACK, key, framed(7, plain), 1_000_000)
    other = parse_input(InputKind.FEEDBACK, key, plain, 1_000_000)
    assert isinstance(one, Feedback) and one == other


def test_a_framed_input_is_still_checked_against_the_contract() -> None:
    key = FEEDBACK["customer_id"].encode()
    bad = framed(7, json.dumps({**FEEDBACK, "score": 11}).encode())
    rejected = parse_input(InputKind.FEEDBACK, key, bad, 1_000_000)
    assert isinstance(rejected, Rejection) and rejected.error_class is ErrorClass.SCHEMA
    short = parse_input(InputKind.FEEDBACK, key, b"\x00\x00\x00", 1_000_000)
    assert isinstance(short, Rejection) and short.error_class is not ErrorClass.SCHEMA
