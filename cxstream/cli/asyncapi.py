"""The AsyncAPI 3 document of the contract: every topic, its key, its value's JSON Schema
and its headers, and what cxstream does on it (``cxstream schemas asyncapi FILE``; a
test keeps docs/asyncapi.yaml current)."""

from __future__ import annotations

import copy
from typing import Any

from cxstream import __version__
from cxstream.schemas.export import CONTRACT_VERSION
from cxstream.schemas.parsing import ErrorClass
from cxstream.streams.settings import Settings

KEY = {"type": "string", "minLength": 1, "maxLength": 128,
       "description": "The customer_id, UTF-8: every input of a customer lands in one "
                      "partition (and so on one worker)."}
VERSION = {"cx.contract.version": {"type": "string", "const": CONTRACT_VERSION,
                                   "description": "The contract version of the value."}}
CLOUDEVENT = {
    "ce_specversion": {"type": "string", "const": "1.0"},
    "ce_id": {"type": "string", "description": "The alert id; for an update "
                                               "<alert id>:<occurrences>, for a follow-up "
                                               "<alert id>:<notice>:<escalations>."},
    "ce_type": {"type": "string", "enum": [
        f"cxstream.alert.{kind}.v{CONTRACT_VERSION}"
        for kind in ("raised", "updated", "escalated", "resolved")]},
    "ce_source": {"type": "string", "description": "/cxstream/<CXSTREAM_APP_ID>"},
    "ce_time": {"type": "string", "format": "date-time"},
    "ce_subject": {"type": "string", "description": "The customer, or the group of a "
                                                    "group alert."},
    "content-type": {"type": "string", "const": "application/json"},
    "cx.rule": {"type": "string", "description": "The rule that raised the alert."},
}
DEADLETTER = {
    "cx.source.topic": {"type": "string"}, "cx.source.partition": {"type": "string"},
    "cx.source.offset": {"type": "string"},
    "cx.error.class": {"type": "string", "enum": [error.value for error in ErrorClass]},
    "cx.error.reason": {"type": "string", "description": "A readable sentence."},
    "cx.failed_at": {"type": "string", "format": "date-time"},
    "cx.truncated": {"type": "string", "const": "true",
                     "description": "Only on a copy cut to the topic's size limit."},
    "cx.original.size": {"type": "string"}, "cx.original.sha256": {"type": "string"},
    "cx.original.key_size": {"type": "string"},
    **VERSION,
}


def _headers(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def asyncapi(settings: Settings) -> dict[str, Any]:
    """The document, with this deployment's topic names."""
    topics: list[tuple[str, str, str, str, dict[str, Any] | None, str]] = [
        # (channel id, topic, schema file, summary, headers, action of cxstream)
        ("customers", settings.topic_customers, "cx.customers.schema.json",
         "CRM profiles; the latest updated_at per customer wins (compacted).", None,
         "receive"),
        ("interactions", settings.topic_interactions, "cx.interactions.schema.json",
         "Interactions at every touchpoint and channel.", None, "receive"),
        ("feedback", settings.topic_feedback, "cx.feedback.schema.json",
         "Survey answers (NPS, CSAT, CES) and comments.", None, "receive"),
        ("alerts", settings.topic_alerts, "cx.alerts.schema.json",
         "Alerts and their follow-ups (escalated, resolved); CloudEvents in binary mode.",
         CLOUDEVENT | VERSION, "send"),
        ("alertLifecycle", settings.topic_alert_lifecycle, "cx.alert-lifecycle.schema.json",
         "The case of every alert (compacted; keyed by alert id).", None, "send"),
        ("surveyRequests", settings.topic_survey_requests, "cx.survey-requests.schema.json",
         "Surveys to send, after the fatigue rules.", VERSION, "send"),
    ]
    channels, operations = _channels(settings, topics)
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "cxstream event contract", "version": CONTRACT_VERSION,
                 "description": f"Topics cxstream {__version__} reads and writes "
                                "(docs/contract.md). Values are UTF-8 JSON, or JSON framed "
                                "by Confluent's JSON Schema serializer (a zero byte and a "
                                "4-byte schema id), which workers strip."},
        "defaultContentType": "application/json",
        "servers": {"kafka": {"host": settings.bootstrap_servers.split(",")[0],
                              "protocol": "kafka",
                              "description": "Your Kafka (CXSTREAM_BOOTSTRAP_SERVERS)."}},
        "channels": channels,
        "operations": operations,
    }


def _channels(settings: Settings, topics: list[tuple[str, str, str, str, dict[str, Any] | None,
                                                     str]]
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The channels and operations: the contract's topics, then the dead-letter ones."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for channel, topic, schema, summary, headers, action in topics:
        message: dict[str, Any] = {
            "name": channel, "contentType": "application/json",
            "summary": summary,
            "payload": {"$ref": f"./schemas/{schema}"},
            "bindings": {"kafka": {"key": copy.deepcopy(KEY) if channel != "alertLifecycle"
                                   else {"type": "string", "description": "The alert id."}}}}
        if headers:
            message["headers"] = _headers(copy.deepcopy(headers))
        channels[channel] = {"address": topic, "messages": {channel: message}}
        operations[f"{action}{channel[0].upper()}{channel[1:]}"] = {
            "action": action, "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{channel}"}]}
    for channel, topic, summary in (
            ("deadletter", settings.topic_deadletter,
             "Inputs that could not be processed: the original key and bytes, and why."),
            ("alertsDeadletter", settings.topic_alerts_deadletter,
             "Alerts the webhook could not deliver, and why.")):
        channels[channel] = {"address": topic, "messages": {channel: {
            "name": channel, "summary": summary,
            "payload": {"description": "The original value, unchanged (or its first bytes "
                                       "when cx.truncated is true)."},
            "headers": _headers(copy.deepcopy(DEADLETTER))}}}
        operations[f"send{channel[0].upper()}{channel[1:]}"] = {
            "action": "send", "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{channel}"}]}
    return channels, operations
