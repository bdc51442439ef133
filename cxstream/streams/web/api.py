"""The worker's HTTP API: customers, group scores, rankings, alerts and their lifecycle,
and the shares behind them; one ``faust.web.View`` class per resource, answering from
web.worker_api.

Every /api endpoint needs ``Authorization: Bearer <token>``: the shared
CXSTREAM_API_TOKEN (machines; sees every alert) or a user's token from the users file
(acts as that user), or a worker's signed acting user (streams.credentials). What a user
may see: their own and their teams' alerts and customers (a lead or an admin: all), the
scores of segments, channels, touchpoints and stages; the scores of agents, the answers
behind a group and the raw tallies are for leads, admins and machines. Erasure is for
admins and machines. /internal endpoints take the shared token only. Without any token
configured they all answer 401. /metrics stays open for Prometheus; /api/openapi.json
describes the API.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import faust

from cxstream.streams.services import WorkerServices
from cxstream.streams.users import Principal
from cxstream.streams.web.errors import ApiError, BadRequest, status_of
from cxstream.streams.web.openapi import openapi_document
from cxstream.streams.web.worker_api import WorkerApi


class ApiView(faust.web.View):
    """A view of the API: checks the caller, runs the call, answers JSON. Subclasses are
    bound to one worker's ``WorkerApi`` when registered (``register_api``)."""

    api: ClassVar[WorkerApi]
    machine_only: ClassVar[bool] = False

    async def answer(self, request: Any,
                     call: Callable[[Principal], Awaitable[Any] | Any]) -> Any:
        credentials = self.api.credentials
        principal = credentials.from_request(request.headers, {})
        if principal is None or (self.machine_only and not principal.machine):
            reason = ("no CXSTREAM_API_TOKEN configured" if not credentials.api_token
                      and not credentials.users.by_digest else "missing or wrong bearer token")
            return self.web.json({"error": reason}, status=401)
        if self.app.should_stop:  # its tables are closing: another worker takes over
            return self.web.json({"error": "this worker is stopping; try again"},
                                 status=503, headers={"Retry-After": "5"})
        try:
            result = call(principal)
            if isinstance(result, Awaitable):
                result = await result
            return self.web.json(result)
        except Exception as exc:
            status = status_of(exc)
            if status is None:
                raise
            retry = exc.retry_after if isinstance(exc, ApiError) else (
                "2" if status == 503 else None)
            return self.web.json({"error": str(exc)}, status=status,
                                 headers={"Retry-After": retry} if retry else None)


async def json_body(request: Any) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise BadRequest(f"body: not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("body: a JSON object")
    return body


class CustomerView(ApiView):
    """GET /api/customers/{customer_id}, answered by the worker that owns them."""

    async def get(self, request: Any, customer_id: str) -> Any:
        return await self.answer(request, lambda who: self.api.customer(who, customer_id))


class EraseCustomerView(ApiView):
    """POST /api/customers/{customer_id}/erase: the customer's state and alert cases."""

    async def post(self, request: Any, customer_id: str) -> Any:
        return await self.answer(request, lambda who: self.api.erase(who, customer_id))


class RankingView(ApiView):
    """GET /api/scores/{dimension}: groups ranked by a metric in one window."""

    async def get(self, request: Any, dimension: str) -> Any:
        return await self.answer(request, lambda who: self.api.ranking(
            who, dimension, request.query))


class GroupScoresView(ApiView):
    """GET /api/scores/{dimension}/{key}: one group in every window."""

    async def get(self, request: Any, dimension: str, key: str) -> Any:
        return await self.answer(request, lambda who: self.api.group(
            who, dimension, key, request.query))


class DriversView(ApiView):
    """GET /api/scores/{dimension}/{key}/drivers: what moved the group's scores, part by
    part."""

    async def get(self, request: Any, dimension: str, key: str) -> Any:
        return await self.answer(request, lambda who: self.api.drivers(
            who, dimension, key, request.query))


class TrendView(ApiView):
    """GET /api/scores/{dimension}/{key}/trend: the group's score per day."""

    async def get(self, request: Any, dimension: str, key: str) -> Any:
        return await self.answer(request, lambda who: self.api.trend(
            who, dimension, key, request.query))


class GroupAnswersView(ApiView):
    """GET /api/scores/{dimension}/{key}/answers: the group's recent answers and comments
    (leads, admins, machines)."""

    async def get(self, request: Any, dimension: str, key: str) -> Any:
        return await self.answer(request, lambda who: self.api.group_answers(
            who, dimension, key, request.query))


class TalliesView(ApiView):
    """GET /api/tallies/{dimension}: the raw tallies (leads, admins, machines)."""

    async def get(self, request: Any, dimension: str) -> Any:
        return await self.answer(request, lambda who: self.api.tallies(who, dimension))


class ValueBandsView(ApiView):
    """GET /api/value-bands: the high-value thresholds per segment."""

    async def get(self, request: Any) -> Any:
        return await self.answer(request, lambda who: self.api.value_bands())


class PrioritiesView(ApiView):
    """GET /api/priorities: issues ranked by customers and revenue at stake."""

    async def get(self, request: Any) -> Any:
        return await self.answer(request, lambda who: self.api.priorities(request.query))


class ModelView(ApiView):
    """GET /api/model: the prediction model's evaluation and its live figures."""

    async def get(self, request: Any) -> Any:
        return await self.answer(request, lambda who: self.api.model())


class AlertsView(ApiView):
    """GET /api/alerts: the alerts the caller may see, filtered, one page."""

    async def get(self, request: Any) -> Any:
        return await self.answer(request, lambda who: self.api.alerts(who, request.query))


class AlertView(ApiView):
    """GET /api/alerts/{alert_id}: the alert, its history, the customer's state."""

    async def get(self, request: Any, alert_id: str) -> Any:
        return await self.answer(request, lambda who: self.api.alert(who, alert_id))


class AlertActionView(ApiView):
    """POST /api/alerts/{alert_id}/{action}: ack, assign, note, snooze, resolve."""

    async def post(self, request: Any, alert_id: str, action: str) -> Any:
        async def act(who: Principal) -> Any:
            return await self.api.act(who, alert_id, action, await json_body(request))
        return await self.answer(request, act)


class AlertsActionView(ApiView):
    """POST /api/alert-actions/{action}: one action on several alerts, answered per
    alert."""

    async def post(self, request: Any, action: str) -> Any:
        async def act(who: Principal) -> Any:
            return await self.api.act_on_many(who, action, await json_body(request))
        return await self.answer(request, act)


class OpenApiView(ApiView):
    """GET /api/openapi.json: the API's description (no data: open like /healthz)."""

    async def get(self, request: Any) -> Any:
        return self.web.json(openapi_document([spec.name for spec in self.api.rules.windows]))


class PartialsShareView(ApiView):
    """GET /internal/partials: this worker's partial tallies."""

    machine_only = True

    async def get(self, request: Any) -> Any:
        return await self.answer(request, lambda who: self.api.partials_share(request.query))


class AnswersShareView(ApiView):
    """GET /internal/group-answers: this worker's recent answers of one group."""

    machine_only = True

    async def get(self, request: Any) -> Any:
        return await self.answer(request, lambda who: self.api.answers_share(request.query))


class ValueHistogramsShareView(ApiView):
    """GET /internal/value-histograms: this worker's value histograms."""

    machine_only = True

    async def get(self, request: Any) -> Any:
        return await self.answer(request, lambda who: self.api.value_histograms_share())


class PrioritiesShareView(ApiView):
    """GET /internal/priorities: this worker's issue counts."""

    machine_only = True

    async def get(self, request: Any) -> Any:
        return await self.answer(request, lambda who: self.api.priorities_share(
            request.query))


class ModelShareView(ApiView):
    """GET /internal/model: this worker's tallies of predictions against answers."""

    machine_only = True

    async def get(self, request: Any) -> Any:
        return await self.answer(request, lambda who: self.api.model_share())


class AlertsShareView(ApiView):
    """GET /internal/alerts: this worker's share of an alert list."""

    machine_only = True

    async def get(self, request: Any) -> Any:
        return await self.answer(request, lambda who: self.api.alerts_share(request.query))


class RedactionShareView(ApiView):
    """POST /internal/alert-redactions?customer_id=&actor=: this worker's share of an
    erasure (its cases of the customer redacted)."""

    machine_only = True

    async def post(self, request: Any) -> Any:
        return await self.answer(request, lambda who: self.api.redact_share(request.query))


#: path -> view, in the order of docs/api.md
ROUTES: tuple[tuple[str, type[ApiView]], ...] = (
    ("/api/customers/{customer_id}", CustomerView),
    ("/api/customers/{customer_id}/erase", EraseCustomerView),
    ("/api/scores/{dimension}", RankingView),
    ("/api/scores/{dimension}/{key}", GroupScoresView),
    ("/api/scores/{dimension}/{key}/answers", GroupAnswersView),
    ("/api/scores/{dimension}/{key}/drivers", DriversView),
    ("/api/scores/{dimension}/{key}/trend", TrendView),
    ("/api/tallies/{dimension}", TalliesView),
    ("/api/value-bands", ValueBandsView),
    ("/api/priorities", PrioritiesView),
    ("/api/model", ModelView),
    ("/api/alerts", AlertsView),
    ("/api/alerts/{alert_id}", AlertView),
    ("/api/alerts/{alert_id}/{action}", AlertActionView),
    ("/api/alert-actions/{action}", AlertsActionView),
    ("/api/openapi.json", OpenApiView),
    ("/internal/partials", PartialsShareView),
    ("/internal/group-answers", AnswersShareView),
    ("/internal/value-histograms", ValueHistogramsShareView),
    ("/internal/priorities", PrioritiesShareView),
    ("/internal/model", ModelShareView),
    ("/internal/alerts", AlertsShareView),
    ("/internal/alert-redactions", RedactionShareView),
)


def register_api(app: faust.App, services: WorkerServices) -> WorkerApi:
    """Add the API's views to the app, bound to this worker's services."""
    api = WorkerApi(app, services)
    blueprint = faust.web.Blueprint("api")
    for path, view in ROUTES:
        if view is PrioritiesView and services.core.priorities is None:
            continue  # switched off in the rules file: 404 like any unknown path
        if view is PrioritiesShareView and services.core.priorities is None:
            continue
        blueprint.route(path, name=view.__name__)(
            type(view.__name__, (view,), {"api": api, "__doc__": view.__doc__}))
    blueprint.register(app)
    return api
