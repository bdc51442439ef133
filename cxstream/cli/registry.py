"""Register the contract's JSON Schemas with a Confluent Schema Registry.

Each input and output topic gets its value schema under the subject ``<topic>-value``
(the serializers' default TopicNameStrategy), as schema type JSON, with the subject's
compatibility set to BACKWARD first: a later version of the contract may add optional
fields, never remove or tighten one. Producers using Confluent's JSON Schema serializer
then frame their messages with the registered id, which workers strip
(schemas.parsing.unframe).

Why by hand: the registry's REST API is four calls; the Confluent client library would
bring librdkafka for nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from cxstream.cli.examples import example_alert
from cxstream.schemas.export import SCHEMAS, json_schema
from cxstream.streams.settings import Settings

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryError(RuntimeError):
    """The registry refused a schema or could not be reached; the message says which."""


@dataclass(frozen=True)
class Registered:
    subject: str
    schema_id: int
    compatibility: str


def topic_of_schema(settings: Settings) -> dict[str, str]:
    """Schema file name -> the topic it describes, with this deployment's topic names."""
    return {
        "cx.customers.schema.json": settings.topic_customers,
        "cx.interactions.schema.json": settings.topic_interactions,
        "cx.feedback.schema.json": settings.topic_feedback,
        "cx.alerts.schema.json": settings.topic_alerts,
        "cx.alert-lifecycle.schema.json": settings.topic_alert_lifecycle,
        "cx.survey-requests.schema.json": settings.topic_survey_requests,
    }


def register_schemas(settings: Settings, client: httpx.Client,
                     compatibility: str = "BACKWARD") -> list[Registered]:
    """Set each subject's compatibility, then register its schema (the registry answers
    with the existing id when the schema is already there)."""
    topics = topic_of_schema(settings)
    assert set(topics) == set(SCHEMAS)
    examples = {"cx.alerts.schema.json": [example_alert()]}
    done = []
    for file_name, topic in topics.items():
        subject = f"{topic}-value"
        _call(client, "PUT", f"/config/{subject}", {"compatibility": compatibility}, subject)
        schema = json.dumps(json_schema(file_name, examples), separators=(",", ":"))
        answer = _call(client, "POST", f"/subjects/{subject}/versions",
                       {"schemaType": "JSON", "schema": schema}, subject)
        done.append(Registered(subject, int(answer["id"]), compatibility))
    return done


def _call(client: httpx.Client, method: str, path: str, body: dict[str, Any],
          subject: str) -> dict[str, Any]:
    try:
        response = client.request(method, path, json=body, headers={
            "Content-Type": MEDIA_TYPE, "Accept": MEDIA_TYPE})
    except httpx.HTTPError as exc:
        raise RegistryError(f"cannot reach the schema registry at {client.base_url}: "
                            f"{exc}") from exc
    if response.status_code == 409:
        raise RegistryError(f"{subject}: the registry refuses this schema as incompatible "
                            f"with the subject's earlier versions: {_message(response)}")
    if response.status_code >= 400:
        raise RegistryError(f"{subject}: {method} {path} answered {response.status_code}: "
                            f"{_message(response)}")
    found: dict[str, Any] = response.json()
    return found


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", response.text))
    except ValueError:
        return response.text[:300]
