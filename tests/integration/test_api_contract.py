"""The HTTP API against its OpenAPI document, on a live worker: schemathesis draws
requests for every operation, as a user and with the shared token. No input gets a 5xx,
every answer's status and body are the documented ones, and every 400 is a JSON error
that starts with the name of the field it is about."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from cxstream.cli.processes import WorkerProcess
from cxstream.streams.settings import load_settings
from testkit.support import TOKEN, configure, feedback, free_port, profile, send, start

pytestmark = pytest.mark.integration
ALICE = "alice-token-0123456789abcdef"
#: a 400 names its field first: "limit: from 1 to 500", "body: not JSON: ..."
NAMES_A_FIELD = re.compile(r"^[A-Za-z_][\w.\\-]*: ")


@pytest.fixture(scope="module")
def worker_url(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("contract")
    users = folder / "users.yaml"
    users.write_text(yaml.safe_dump({"users": [
        {"name": "alice", "token": ALICE, "teams": ["smb-support"]}]}))
    run = f"contract{free_port()}"
    values = configure({
        "bootstrap_servers": kafka_bootstrap, "app_id": f"cxstream-{run}",
        **{f"topic_{name}": f"{run}.cx.{name.replace('_', '-')}" for name in (
            "interactions", "feedback", "customers", "alerts", "deadletter",
            "alert_lifecycle", "survey_requests")},
        "partitions": "3", "data_dir": str(folder / "worker"), "web_port": str(free_port())},
        users_file=str(users))
    worker: WorkerProcess = start(values, folder, "worker")
    worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
    settings_ = load_settings({}, **values)
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    send(settings_, settings_.topic_customers, [profile(customer_id="c-1", segment="smb",
                                                        updated_at=now)])
    send(settings_, settings_.topic_feedback, [feedback(customer_id="c-1", score=2,
                                                        occurred_at=now)])
    worker.wait_for("cxstream_events_folded_total", 1, kind="feedback")
    try:
        yield f"http://127.0.0.1:{values['web_port']}"
    finally:
        assert worker.stop() == 0, worker.log()


def test_no_input_gets_a_server_error_and_every_400_names_its_field(worker_url: str) -> None:
    # schemathesis' own pytest plugin does not run under this pytest (9.x): each operation's
    # strategy is driven with hypothesis here instead
    schema = schemathesis.openapi.from_url(f"{worker_url}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = {f"{method.upper()} {path}" for path, methods in schema.raw_schema[
        "paths"].items() for method in methods}
    # each exercised (schemathesis leaves out the document's own path, which it read)
    assert {operation.label for operation in operations} == documented - {
        "GET /api/openapi.json"}
    seen: Counter[int] = Counter()  # answers by status: the checks ran on real answers
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def answers_as_documented(case: Any) -> None:
            for token in (TOKEN, ALICE):
                response = case.call(base_url=worker_url,
                                     headers={"Authorization": f"Bearer {token}"})
                seen[response.status_code] += 1
                case.validate_response(response, checks=[
                    not_a_server_error, status_code_conformance, content_type_conformance,
                    response_schema_conformance])
                if response.status_code == 400:
                    error = response.json()["error"]
                    assert NAMES_A_FIELD.match(error), (case.path, error)

        answers_as_documented()
    assert sum(seen.values()) >= 100 and seen[400] > 0 and seen[200] > 0, seen
    assert not [status for status in seen if status >= 500]
