"""What the API answers, as plain calls: the JSON views (web.api) and the console's pages
(web.console) both call these, so a page shows exactly what the API would answer to the
same user.

A customer or an alert lives on the worker that owns its partition: the call answers
here when that is this worker, else it asks the owner through its API (web.client) with
this worker's credential and the caller's name signed, never the caller's token. Lists
and scores gather every worker's share (groups.cluster).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

from yarl import URL

from cxstream.alerts.building import route, team_of
from cxstream.alerts.priorities import counts
from cxstream.alerts.priorities import ranking as priority_ranking
from cxstream.scoring.customer_view import customer_report
from cxstream.scoring.prediction import prediction_json
from cxstream.scoring.prediction_live import merged
from cxstream.scoring.windows import from_epoch
from cxstream.streams.alerting.case_index import words_of
from cxstream.streams.alerting.cases import case_row
from cxstream.streams.customers.state_codec import customer_partition, decode_customer
from cxstream.streams.customers.survey_desk import memory_key, memory_report
from cxstream.streams.kafka.faust_compat.access import table_store
from cxstream.streams.services import WorkerServices
from cxstream.streams.users import Principal
from cxstream.streams.web import queries as q
from cxstream.streams.web.alert_lists import filter_rows, local_rows, viewer_of, viewer_params
from cxstream.streams.web.client import ApiClient, Unreachable
from cxstream.streams.web.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    NotFound,
    NotServing,
    Unavailable,
    must_serve,
    status_of,
)
from cxstream.streams.web.score_queries import ScoreQueries

log = logging.getLogger(__name__)
Query = Mapping[str, str]


class WorkerApi(ScoreQueries):
    """The API's answers for one worker."""

    def __init__(self, app: Any, services: WorkerServices) -> None:
        assert services.tables is not None
        self.app = app
        self.services = services
        self.cluster = services.cluster
        self.cases = services.cases
        self.customers = services.tables.customer_to_state
        self.rules = services.core.rules
        self.routing = services.files.rules.routing
        self.credentials = services.credentials
        self.board = services.core.priorities
        self.survey_memory = (None if services.core.surveys is None
                              else table_store(services.tables.customer_to_survey_memory))

    # -- routing to the owner ----------------------------------------------------------

    async def on_owner(self, table_name: str, key: str, principal: Principal, method: str,
                       path: str, here: Callable[[], Awaitable[Any]],
                       body: Any = None) -> Any:
        """``here()`` when this worker owns ``key``'s partition of the table, else the
        owner's answer to the same call made as ``principal``."""
        if self.app.should_stop:  # the view says so before anything is read
            return await here()
        try:
            owner = URL(str(self.app.router.key_store(table_name, key.encode())))
        except KeyError as exc:
            raise Unavailable("the partition has no owner right now (a rebalance is under "
                              "way); retry shortly") from exc
        own = URL(str(self.app.conf.canonical_url))
        if (owner.host, owner.port) == (own.host, own.port):
            return await here()
        client = ApiClient(str(owner.with_path("/")),
                           self.credentials.forward_headers(principal), timeout=15)
        try:
            return await client.acall(method, path, json=body)
        except Unreachable as exc:
            raise ApiError(503, str(exc), "2") from exc

    # -- customers ---------------------------------------------------------------------

    async def customer(self, principal: Principal, customer_id: str) -> dict[str, Any]:
        return await self.on_owner(
            self.customers.name, customer_id, principal, "GET",
            f"/api/customers/{quote(customer_id)}",
            lambda: self._customer_here(principal, customer_id))

    async def _customer_here(self, principal: Principal, customer_id: str
                             ) -> dict[str, Any]:
        raw = self.customers.get(customer_id.encode())
        state = None if raw is None else decode_customer(raw, self.customers.get)
        if state is None or not principal.can_see(route(state, self.routing),
                                                  team_of(state, self.routing)):
            raise NotFound(f"no customer {customer_id!r}")  # the same for one not theirs
        report = customer_report(state, self.services.core.bands.current, self.rules.state)
        report["prediction"] = self._explained(raw) or report["prediction"]
        if self.survey_memory is not None:
            report["surveys"] = memory_report(self.survey_memory.get(memory_key(customer_id)))
        return report

    def _explained(self, raw: bytes) -> dict[str, Any] | None:
        """The customer's prediction with its reasons as of their newest event, found now
        (scoring.prediction.Predictor.explained: the fold keeps none per event,
        alerts.core_predictions); None without a model or an event."""
        live = self.services.core.writer.live
        if live is None:
            return None
        plain = self.services.core.writer.decode_state(raw)
        if plain.last_event_at is None:
            return None
        return prediction_json(live.predictor.explained(plain, plain.last_event_at))

    async def erase(self, principal: Principal, customer_id: str) -> dict[str, Any]:
        if not principal.may_erase:
            raise Forbidden("erasure needs the shared API token or a user of role admin")
        return await self.on_owner(
            self.customers.name, customer_id, principal, "POST",
            f"/api/customers/{quote(customer_id)}/erase",
            lambda: self._erase_here(principal, customer_id))

    async def _erase_here(self, principal: Principal, customer_id: str) -> dict[str, Any]:
        must_serve(self.app)
        raw = self.customers.get(customer_id.encode())
        if raw is None:
            raise NotFound(f"no customer {customer_id!r}")
        if customer_partition(raw) not in self.services.core.partials_index.loaded:
            # which groups hold the customer's answers is known once the partition's
            # group table is read (right after its recovery)
            raise NotServing("this worker is reading its group tables; try again")
        # first the alert cases, on every worker (all or none)
        params = {"customer_id": customer_id, "actor": principal.name}
        shares = await self.cluster.gather(
            "/internal/alert-redactions", params, lambda: {},
            self.services.partitions.alerts, "POST",
            lambda: self._redact_here(customer_id, principal.name))
        redacted = sum(share.get("redacted", 0) for share in shares)
        receipt = await self.services.state.erase(customer_id)
        if receipt is None:
            raise NotFound(f"no customer {customer_id!r}")
        receipt["deleted"]["alert_cases_redacted"] = redacted
        log.warning("customer %s erased by %s",
                    hashlib.sha256(customer_id.encode()).hexdigest()[:12], principal.name)
        return {"erased": customer_id, "by": principal.name, **receipt}

    async def _redact_here(self, customer_id: str, actor: str) -> dict[str, Any]:
        return {"partitions": sorted(self.cases.owned()),
                "redacted": await self.cases.redact_customer(customer_id, actor)}

    async def redact_share(self, query: Query) -> dict[str, Any]:
        """This worker's share of an erasure (internal)."""
        customer_id = query.get("customer_id", "")
        if not customer_id:
            raise BadRequest("customer_id: required")
        must_serve(self.app)
        return await self._redact_here(customer_id, query.get("actor", "api"))

    # -- priorities --------------------------------------------------------------------

    async def priorities(self, query: Query) -> dict[str, Any]:
        """Issues ranked by the customers they hit and the revenue at stake."""
        board = self.board
        if board is None:
            raise NotFound("priorities are switched off in the rules file "
                           "(priorities.enabled)")
        start, previous, options = q.priorities_query(query, board, q.now())
        starts = {start, previous}
        params = {"starts": ",".join(str(s) for s in sorted(starts))}
        shares = await self.cluster.gather(
            "/internal/priorities", params,
            lambda: board.local(self.cluster.active_partitions(), starts))
        summed = counts((row[0], row[1], row[2]) for share in shares for row in share["rows"])
        limit = options.pop("limit")
        answer = priority_ranking(summed, start, previous, board.config, **options)
        width = board.config.window_seconds
        answer["window"] = {"start": from_epoch(start).isoformat(),
                            "end": from_epoch(start + width).isoformat()}
        answer["previous_window"] = {"start": from_epoch(previous).isoformat(),
                                     "end": from_epoch(start).isoformat()}
        answer["total"] = len(answer["issues"])
        answer["issues"] = answer["issues"][:limit]
        return answer

    def priorities_share(self, query: Query) -> dict[str, Any]:
        if self.board is None:
            raise NotFound("priorities are switched off in the rules file")
        return self.board.local(self.cluster.active_partitions(),
                                q.parse_starts(query.get("starts", "")))

    # -- the prediction model ----------------------------------------------------------

    async def model(self) -> dict[str, Any]:
        """The prediction model's file and how it does on the answers that followed its
        predictions, every worker's added up (docs/predictions.md)."""
        live = self.services.core.writer.live
        if live is None:
            raise NotFound("no prediction model: CXSTREAM_MODEL_FILE is not set")
        shares = await self.cluster.gather("/internal/model", {}, self.model_share)
        model = live.predictor.model
        return {"model_version": model.version, "trained": model.file.trained,
                "evaluation": model.evaluation,
                "live": merged([share["weeks"] for share in shares]).report().get(
                    model.version, {})}

    def model_share(self) -> dict[str, Any]:
        live = self.services.core.writer.live
        if live is None:
            raise NotFound("no prediction model: CXSTREAM_MODEL_FILE is not set")
        return {"partitions": sorted(self.cluster.active_partitions()),
                "weeks": live.evaluation.to_json()}

    # -- alerts ------------------------------------------------------------------------

    async def alerts(self, principal: Principal, query: Query) -> dict[str, Any]:
        """The alerts ``principal`` may see that match the filters, one page of them."""
        for name in query:
            if name not in (*q.ALERT_FILTERS, q.SEARCH, "limit", "offset"):
                raise BadRequest(f"{name}: not a filter; filters are "
                                 f"{', '.join(q.ALERT_FILTERS)} and {q.SEARCH} (words to "
                                 "search), with limit and offset")
        filters = {name: query[name] for name in (*q.ALERT_FILTERS, q.SEARCH)
                   if query.get(name)}
        if q.SEARCH in filters and not words_of(filters[q.SEARCH]):
            raise BadRequest(f"{q.SEARCH}: at least one word (letters or digits)")
        offset, limit = q.page_bounds(query)
        first = offset + limit  # each worker's first rows: the page is among them
        shares = await self.cluster.gather(
            "/internal/alerts", {**filters, **viewer_params(principal), "first": str(first)},
            lambda: local_rows(self.cases, filters, principal, first),
            partition_count=self.services.partitions.alerts)
        rows = [row for share in shares for row in share["alerts"]]
        total = sum(share.get("matched", len(share["alerts"])) for share in shares)
        return q.page(filter_rows(rows, query, principal), query, total)

    def alerts_share(self, query: Query) -> dict[str, Any]:
        """This worker's share of an alert list (internal)."""
        first = query.get("first")
        return local_rows(self.cases, {name: query[name] for name in (*q.ALERT_FILTERS,
                                                                      q.SEARCH)
                                       if query.get(name)}, viewer_of(query),
                          None if first is None
                          else q.parse_bounded(first, "first", 1, 2 * q.MAX_COUNT))

    async def alert(self, principal: Principal, alert_id: str) -> dict[str, Any]:
        """An alert, its history and its customer's current state."""
        return await self.on_owner(self.cases.table.name, alert_id, principal, "GET",
                                   f"/api/alerts/{quote(alert_id)}",
                                   lambda: self._alert_here(principal, alert_id))

    async def _alert_here(self, principal: Principal, alert_id: str) -> dict[str, Any]:
        case = self.cases.get(alert_id)
        if case is None or not principal.can_see(case.owner, case.team):
            raise NotFound(f"no alert {alert_id!r}")
        customer = None
        if case.alert.customer_id:
            try:
                customer = await self.customer(principal, case.alert.customer_id)
            except (NotFound, ApiError, Unavailable):
                customer = None  # erased, or its worker is busy: the alert still shows
        return {"alert": {**case_row(case, q.now()),
                          **case.model_dump(mode="json", exclude={"history"})},
                "history": [change.model_dump(mode="json") for change in case.history],
                "customer": customer}

    async def act(self, principal: Principal, alert_id: str, action: str,
                  body: dict[str, Any]) -> dict[str, Any]:
        """ack, assign, note, snooze or resolve an alert."""
        if action not in q.ACTIONS:
            raise NotFound(f"no action {action!r}; actions are {', '.join(q.ACTIONS)}")
        q.check_text_fields(body)
        return await self.on_owner(self.cases.table.name, alert_id, principal, "POST",
                                   f"/api/alerts/{quote(alert_id)}/{action}",
                                   lambda: self._act_here(principal, alert_id, action, body),
                                   body)

    async def act_on_many(self, principal: Principal, action: str,
                          body: dict[str, Any]) -> dict[str, Any]:
        """One action on several alerts (``alert_ids``, at most MAX_BULK), each as its
        own ``act``: one alert refused (not found, not the caller's, a transition it
        cannot take) or whose worker is busy leaves the others done, and the answer
        says, per alert, what happened."""
        if action not in q.ACTIONS:
            raise NotFound(f"no action {action!r}; actions are {', '.join(q.ACTIONS)}")
        ids = q.parse_alert_ids(body.get("alert_ids"))
        fields = {name: value for name, value in body.items() if name != "alert_ids"}
        q.check_text_fields(fields)
        results = []
        for alert_id in ids:
            try:
                answer = await self.act(principal, alert_id, action, fields)
            except Exception as exc:
                status = status_of(exc)
                if status is None:
                    raise
                results.append({"alert_id": alert_id, "status": status, "error": str(exc)})
            else:
                results.append({"alert_id": alert_id, "status": 200,
                                "alert_status": answer["alert"]["status"]})
        done = sum(result["status"] == 200 for result in results)
        return {"action": action, "done": done, "failed": len(results) - done,
                "results": results}

    async def _act_here(self, principal: Principal, alert_id: str, action: str,
                        body: dict[str, Any]) -> dict[str, Any]:
        must_serve(self.app)
        case = await self.cases.command(alert_id, action, principal, body)
        return {"alert": {**case_row(case, q.now()),
                          **case.model_dump(mode="json", exclude={"history"})},
                "change": case.last_change.model_dump(mode="json")}
