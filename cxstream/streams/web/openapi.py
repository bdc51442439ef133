"""The HTTP API as an OpenAPI 3.1 document, served at /api/openapi.json.

Written here from the same names the views check (dimensions, metrics, filters, actions),
and compared with the routes a worker serves by a test: a route without its entry, or an
entry without its route, fails it. Every error answer is ``{"error": "<field>: ..."}``.
"""

from __future__ import annotations

from typing import Any

from cxstream import __version__
from cxstream.scoring.groups import BY, DIMENSIONS, DRIVER_WINDOWS, KEYED_DIMENSIONS

METRICS = ("nps", "csat", "ces")
ALERT_FILTERS = ("owner", "team", "status", "severity", "rule", "customer_id")
ACTIONS = ("ack", "assign", "note", "snooze", "resolve")
MAX_PAGE = 500
MAX_BULK = 200  # web.queries.MAX_BULK
ERROR = {"$ref": "#/components/schemas/Error"}
ANY_OBJECT: dict[str, Any] = {"type": "object"}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def _path(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True,
            "schema": schema or {"type": "string", "minLength": 1}}


def _answers(*codes: int) -> dict[str, Any]:
    found: dict[str, Any] = {"200": {"description": "the answer", "content": {
        "application/json": {"schema": ANY_OBJECT}}}}
    reasons = {400: "a bad argument, named", 401: "no or a wrong token",
               403: "the caller may not", 404: "not found, or not the caller's",
               409: "the alert's status does not allow it",
               503: "partitions are moving, tables are being restored or the worker is "
                    "stopping: retry after Retry-After"}
    for code in (401, *codes):
        found[str(code)] = {"description": reasons[code],
                            "content": {"application/json": {"schema": ERROR}}}
    return found


def _get(summary: str, parameters: list[dict[str, Any]], *codes: int) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": parameters,
                    "responses": _answers(*codes)}}


AT = _query("at", {"type": "string", "format": "date-time"},
            "a time with a UTC offset (default: now)")
PAGE = [_query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, "rows"),
        _query("offset", {"type": "integer", "minimum": 0, "maximum": 10**9}, "first row")]


def openapi_document(windows: list[str]) -> dict[str, Any]:
    """The document, for a worker whose score windows are ``windows``."""
    dimension = _path("dimension", {"type": "string", "enum": list(DIMENSIONS)})
    paths: dict[str, Any] = {
        "/api/openapi.json": {"get": {"summary": "this document (no token needed)",
                                      "security": [], "responses": {"200": {
                                          "description": "the document", "content": {
                                              "application/json": {"schema": ANY_OBJECT}}}}}},
        "/api/customers/{customer_id}": _get(
            "a customer's state, value band, quadrant and survey requests",
            [_path("customer_id")], 404, 503),
        "/api/customers/{customer_id}/erase": {"post": {
            "summary": "erase a customer (admins and the shared token)",
            "parameters": [_path("customer_id")], "responses": _answers(403, 404, 503)}},
        "/api/scores/{dimension}": _get("groups of a dimension ranked by a metric", [
            dimension, _query("window", {"type": "string", "enum": windows}, "window"),
            _query("metric", {"type": "string", "enum": list(METRICS)}, "metric"),
            _query("which", {"type": "string", "enum": ["current", "previous"]}, "window"),
            _query("min_n", {"type": "integer", "minimum": 1, "maximum": 10**9},
                   "fewest answers shown"),
            AT], 400, 403, 503),
        "/api/scores/{dimension}/{key}": _get("one group's scores, current and previous",
                                              [dimension, _path("key"), AT], 400, 403, 503),
        **_group_paths(dimension, windows),
        "/api/tallies/{dimension}": _get("every group window's raw counts", [_path(
            "dimension", {"type": "string", "enum": list(KEYED_DIMENSIONS)})],
                                         400, 403, 503),
        "/api/value-bands": _get("the current high-value thresholds", []),
        "/api/priorities": _get("issues ranked by the revenue at stake", [
            AT, _query("rank_by", {"type": "string", "enum": ["value", "customers", "mix"]},
                       "ranking"),
            _query("kind", {"type": "string", "enum": ["touchpoint", "topic"]}, "issues"),
            _query("by", {"type": "string", "enum": ["issue", "area"]}, "grouping"),
            PAGE[0]], 400, 503),
        "/api/model": _get("the prediction model's evaluation and how it does on the "
                           "answers that followed its predictions", [], 404, 503),
        **_alert_paths(),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "cxstream", "version": __version__,
                 "description": "Customers, scores, priorities and alerts of the workers; "
                                "any worker answers any request (docs/api.md)."},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["error"],
                                  "properties": {"error": {"type": "string"}}}}},
    }


def _group_paths(dimension: dict[str, Any], windows: list[str]) -> dict[str, Any]:
    """A group's answers, drivers and trend."""
    return {
        "/api/scores/{dimension}/{key}/answers": _get(
            "the group's recent answers and comments, newest first", [
                dimension, _path("key"),
                _query("survey", {"type": "string", "enum": list(METRICS)}, "survey"),
                _query("window", {"type": "string", "enum": windows},
                       "only the answers of this window, current at at"), AT,
                _query("comments", {"type": "string", "enum": ["all", "only"]},
                       "only answers with a comment"), PAGE[0]], 400, 403, 503),
        "/api/scores/{dimension}/{key}/drivers": _get(
            "what moved the group's scores between the previous window and the current "
            "one, part by part", [
                dimension, _path("key"),
                _query("by", {"type": "string", "enum": sorted(
                    {by for bys in BY.values() for by in bys})},
                       "the dimension of the parts (by dimension: see docs/api.md)"),
                _query("window", {"type": "string", "enum": list(DRIVER_WINDOWS)},
                       "window"), AT], 400, 403, 503),
        "/api/scores/{dimension}/{key}/trend": _get(
            "the group's score per day, oldest first, with answers and margins", [
                dimension, _path("key"),
                _query("metric", {"type": "string", "enum": list(METRICS)}, "metric"),
                _query("days", {"type": "integer", "minimum": 2, "maximum": 60}, "days"),
                AT], 400, 403, 503),
    }


#: the fields of an action on an alert (each action takes its own: docs/api.md)
ACTION_FIELDS: dict[str, Any] = {
    "to": {"type": "string"}, "text": {"type": "string"},
    "until": {"type": "string", "format": "date-time"},
    "category": {"type": "string"}, "note": {"type": "string"}}


def _alert_paths() -> dict[str, Any]:
    """The alert list, one alert, an action on it, and one action on several."""
    action = _path("action", {"type": "string", "enum": list(ACTIONS)})
    action_body = {"required": False, "content": {"application/json": {"schema": {
        "type": "object", "properties": ACTION_FIELDS}}}}
    bulk_body = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["alert_ids"], "properties": {
            "alert_ids": {"type": "array", "minItems": 1, "maxItems": MAX_BULK,
                          "items": {"type": "string"}},
            **ACTION_FIELDS}}}}}
    return {
        "/api/alerts": _get("the alerts the caller may see, by deadline", [
            *(_query(name, {"type": "string"}, f"{name} (comma-separated: any of)")
              for name in ALERT_FILTERS),
            _query("q", {"type": "string"}, "words the case holds, all of them"),
            *PAGE], 400, 503),
        "/api/alerts/{alert_id}": _get("an alert, its case, history and customer",
                                       [_path("alert_id")], 404, 503),
        "/api/alert-actions/{action}": {"post": {
            "summary": "one action on several alerts, answered per alert",
            "requestBody": bulk_body, "parameters": [action],
            "responses": _answers(400, 404, 503)}},
        "/api/alerts/{alert_id}/{action}": {"post": {
            "summary": "act on an alert", "requestBody": action_body,
            "parameters": [_path("alert_id"), action],
            "responses": _answers(400, 404, 409, 503)}},
    }
