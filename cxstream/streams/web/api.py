"""The worker's HTTP API: customers, group scores, rankings, alerts and their lifecycle,
and the shares behind them.

Every /api endpoint needs ``Authorization: Bearer <token>``: the shared
CXSTREAM_API_TOKEN (machines; sees every alert) or a user's token from the users file
(acts as that user), or a worker's signed acting user (streams.web.credentials). What a user
may see: their own and their teams' alerts and customers (a lead or an admin: all), the
scores of segments, channels, touchpoints and stages; the scores of agents and the raw
tallies are for leads, admins and machines. Erasure is for admins and machines.
/internal endpoints take the shared token only. Without any token configured they all
answer 401. /metrics stays open for Prometheus.

A request for a customer or an alert held by another worker is forwarded to it with
this worker's own credential and the caller's name signed, never the caller's token.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
import httpx
from yarl import URL

from cxstream.alerts.building import route, team_of
from cxstream.alerts.lifecycle import InvalidCommand, TransitionRefused
from cxstream.alerts.priorities import counted_windows, counts, signal_window
from cxstream.alerts.priorities import ranking as priority_ranking
from cxstream.scoring.customer_view import customer_report
from cxstream.scoring.fold import FoldRules
from cxstream.scoring.groups import DIMENSIONS
from cxstream.scoring.reports import current_and_previous, group_report, merge_rows, ranking
from cxstream.scoring.windows import WindowSpec, from_epoch
from cxstream.streams.alerting.case_index import (
    Bucket,
    CaseSummary,
    IndexNotReady,
    summary_list_order,
)
from cxstream.streams.alerting.cases import (
    AlertCases,
    CaseNotFound,
    case_row,
    sort_rows,
)
from cxstream.streams.customers.band_refresh import BandsHolder
from cxstream.streams.customers.state_writer import decode_customer
from cxstream.streams.customers.survey_desk import memory_key, memory_report
from cxstream.streams.groups.cluster import Cluster, ClusterIncomplete
from cxstream.streams.issues.priorities import PriorityBoard
from cxstream.streams.kafka.timers import is_serving
from cxstream.streams.users import MACHINE, Principal
from cxstream.streams.web.credentials import Credentials
from cxstream.streams.web.openapi import openapi_document

METRICS = ("nps", "csat", "ces")
log = logging.getLogger(__name__)


class BadRequest(ValueError):
    """A query parameter is invalid; the message says which and why."""


def is_authorized(headers: Any, token: str | None) -> bool:
    """True when the request carries ``Bearer <token>`` (compared in constant time)."""
    if not token:
        return False
    supplied = headers.get("Authorization", "")
    return hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode())


def parse_at(raw: str | None, now: Callable[[], datetime]) -> datetime:
    if raw is None:
        return now()
    try:
        at = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise BadRequest(f"at: not an ISO 8601 time: {raw!r}") from exc
    if at.tzinfo is None:
        raise BadRequest("at: needs a UTC offset, e.g. 2026-11-23T10:00:00+00:00")
    try:
        return at.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise BadRequest(f"at: out of range in UTC: {raw[:64]!r}") from exc


def pick_window(specs: tuple[WindowSpec, ...], name: str) -> WindowSpec:
    for spec in specs:
        if spec.name == name:
            return spec
    raise BadRequest(f"window: one of {', '.join(s.name for s in specs)}, not {name!r}")


def parse_slices(raw: str) -> set[tuple[str, int]] | None:
    """"window:start,..." -> {(window, start)}; "all" -> None (every slice)."""
    if raw == "all":
        return None
    try:
        return {(part.split(":")[0], int(part.split(":")[1])) for part in raw.split(",") if part}
    except (IndexError, ValueError) as exc:
        raise BadRequest(f"slices: expected window:start[,...], got {raw!r}") from exc


class NotFound(LookupError):
    """The requested customer or group does not exist."""


class Forbidden(PermissionError):
    """The caller may not do this (HTTP 403); the message says who may."""


class NotServing(RuntimeError):
    """A change asked of a worker that does not serve its partitions yet (a 503)."""


def must_serve(app: Any) -> None:
    """Before a change to a table: the worker serves its partitions. A change made on a
    half-restored table reads stale state, and its changelog offset would tell the next
    start to skip what was not restored yet."""
    if not is_serving(app):
        raise NotServing("this worker is restoring its tables or taking over partitions; "
                         "try again")


class Conflict(ValueError):
    """The alert's status does not allow the change (HTTP 409)."""


@dataclass(frozen=True)
class AlertsApi:
    """What the alert endpoints need: the cases, the users, the lifecycle partitions."""

    cases: AlertCases
    partitions: int


ALERT_FILTERS = ("owner", "team", "status", "severity", "rule", "customer_id")
ACTIONS = ("ack", "assign", "note", "snooze", "resolve")
MAX_PAGE = 500
MAX_COUNT = 10**9


def filter_rows(rows: list[dict[str, Any]], query: Any, principal: Principal
                ) -> list[dict[str, Any]]:
    """The rows the principal may see that match every filter given (``status=unresolved``:
    every status but resolved)."""
    kept = []
    for row in rows:
        if not principal.can_see(row["owner"], row["team"]):
            continue
        if all(_matches(row, name, query.get(name)) for name in ALERT_FILTERS):
            kept.append(row)
    return sort_rows(kept)


async def _redact_here(cases: AlertCases, customer_id: str, actor: str) -> dict[str, Any]:
    return {"partitions": sorted(cases.owned()),
            "redacted": await cases.redact_customer(customer_id, actor)}


def local_rows(cases: AlertCases, filters: dict[str, str], viewer: Principal = MACHINE,
               first: int | None = None) -> dict[str, Any]:
    """This worker's share of an alert list: the cases of its partitions that ``viewer``
    may see and that match ``filters``; with ``first``, only the first that many in the
    list's order (the list pages the merge of every worker's first rows), and in
    ``matched`` how many match in all. Unresolved cases come from the index, which hands
    out the first rows of the buckets that match and counts the rest without visiting
    them; rows are built only for what is returned. Only a list that may hold resolved
    cases reads the table (CXSTREAM_ALERT_CASE_RETENTION_DAYS bounds what it holds)."""
    now = _now()
    wanted = set(filters.get("status", "").split(",")) - {""}
    if wanted and "resolved" not in wanted:
        def bucket_wanted(bucket: Bucket) -> bool:
            team, owner, status, severity, rule = bucket
            return viewer.can_see(owner, team) and all(
                _matches_value(value, name, filters.get(name)) for name, value in (
                    ("team", team), ("owner", owner), ("status", status),
                    ("severity", severity), ("rule", rule)))

        customers = filters.get("customer_id")
        matched, chosen = (cases.index().select(bucket_wanted, first) if customers is None
                           else _of_customers(cases, bucket_wanted, first,
                                              set(customers.split(","))))
    else:
        kept = sorted((summary for summary in map(CaseSummary.of, cases.local())
                       if viewer.can_see(summary.owner, summary.team)
                       and all(_matches_value(getattr(summary, name), name, value)
                               for name, value in filters.items())),
                      key=summary_list_order)
        matched, chosen = len(kept), kept if first is None else kept[:first]
    return {"partitions": sorted(cases.owned()), "matched": matched,
            "alerts": [case_row(summary, now) for summary in chosen]}


def _of_customers(cases: AlertCases, wanted: Callable[[Bucket], bool], first: int | None,
                  customers: set[str]) -> tuple[int, list[CaseSummary]]:
    """The unresolved cases of a few customers (a filter of comma-separated ids)."""
    found = [cases.index().select(wanted, None, customer) for customer in customers]
    rows = sorted((summary for _, summaries in found for summary in summaries),
                  key=summary_list_order)
    return len(rows), rows if first is None else rows[:first]


def viewer_params(principal: Principal) -> dict[str, str]:
    """Who a share of the alert list is for, as the internal request carries it."""
    return {"viewer": principal.name, "viewer_teams": ",".join(principal.teams),
            "viewer_role": "lead" if principal.sees_all else principal.role}


def viewer_of(query: Any) -> Principal:
    """The viewer of ``viewer_params`` (a request without one: the machine, all)."""
    name = query.get("viewer")
    if not name:
        return MACHINE
    teams = tuple(team for team in query.get("viewer_teams", "").split(",") if team)
    return Principal(name, teams, query.get("viewer_role", "agent"))


def _matches(row: dict[str, Any], name: str, wanted: str | None) -> bool:
    return _matches_value(row.get(name), name, wanted)


def _matches_value(value: Any, name: str, wanted: str | None) -> bool:
    if wanted is None or wanted == "":
        return True
    values = set(wanted.split(","))  # a comma-separated filter matches any of its values
    if name == "status" and "unresolved" in values:
        values |= {"open", "acknowledged", "snoozed"}
    return str(value) in values


def page_bounds(query: Any) -> tuple[int, int]:
    """(offset, limit) of a list request, each checked (a 400 naming it)."""
    return (parse_bounded(query.get("offset", "0"), "offset", 0, MAX_COUNT),
            parse_bounded(query.get("limit", "50"), "limit", 1, MAX_PAGE))


def page(rows: list[dict[str, Any]], query: Any, total: int | None = None
         ) -> dict[str, Any]:
    """The page ``query`` asks for of ``rows`` (sorted); ``total``: how many match in
    all, when ``rows`` holds only the first of them."""
    offset, limit = page_bounds(query)
    total = len(rows) if total is None else total
    chunk = rows[offset:offset + limit]
    following = offset + limit if offset + limit < total else None
    return {"total": total, "offset": offset, "limit": limit, "next_offset": following,
            "alerts": chunk}


def parse_bounded(raw: str, name: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"{name}: a whole number, not {raw!r}") from exc
    if not low <= value <= high:
        raise BadRequest(f"{name}: from {low} to {high}")
    return value


Handler = Callable[..., Awaitable[Any]]


def register_api(app: Any, customers: Any, cluster: Cluster, bands: BandsHolder,
                 rules: FoldRules, credentials: Credentials, routing: Any,
                 erase: Callable[[str], Awaitable[Any]] | None = None,
                 alerts: AlertsApi | None = None, survey_memory: Any = None,
                 agent_min_answers: int = 1, priorities: PriorityBoard | None = None
                 ) -> None:
    """Add the API's views to the Faust app (``survey_memory``: the survey requests'
    table, shown with each customer; ``routing``: the rules' routing, which decides whose
    customer is whose)."""
    token = credentials.api_token
    forward = Forwarder(app, credentials)

    def principal_of(request: Any) -> Principal | None:
        return credentials.from_request(request.headers, {})

    def json_view(fun: Handler | None = None, *, machine_only: bool = False,
                  with_principal: bool = False) -> Any:
        """Check the token, run ``fun``, and turn its result or error into a JSON reply."""

        def wrap(fun: Handler) -> Handler:
            @functools.wraps(fun)
            async def view(web: Any, request: Any, **match: str) -> Any:
                principal = principal_of(request)
                if principal is None or (machine_only and not principal.machine):
                    reason = ("no CXSTREAM_API_TOKEN configured" if not token
                              and not credentials.users.by_digest
                              else "missing or wrong bearer token")
                    return web.json({"error": reason}, status=401)
                if with_principal:
                    match = {**match, "principal": principal}  # type: ignore[dict-item]
                if app.should_stop:  # its tables are closing: another worker takes over
                    return web.json({"error": "this worker is stopping; try again"},
                                    status=503, headers={"Retry-After": "5"})
                try:
                    return web.json(await fun(request, **match))
                except (BadRequest, InvalidCommand) as exc:
                    return web.json({"error": str(exc)}, status=400)
                except Forbidden as exc:
                    return web.json({"error": str(exc)}, status=403)
                except (NotFound, CaseNotFound) as exc:
                    return web.json({"error": str(exc)}, status=404)
                except (Conflict, TransitionRefused) as exc:
                    return web.json({"error": str(exc)}, status=409)
                except (ClusterIncomplete, IndexNotReady, NotServing) as exc:
                    return web.json({"error": str(exc)}, status=503,
                                    headers={"Retry-After": "2"})

            return view

        return wrap(fun) if fun is not None else wrap

    async def gathered(dimension: str, slices: set[tuple[str, int]] | None,
                       key: str | None) -> Any:
        joined = "all" if slices is None else ",".join(f"{w}:{s}" for w, s in sorted(slices))
        params = {"dimension": dimension, "slices": joined}
        if key is not None:
            params["key"] = key
        shares = await cluster.gather("/internal/partials", params,
                                      lambda: cluster.local_partials(dimension, slices, key))
        return merge_rows(tuple(row) for share in shares for row in share["rows"])

    @json_view(with_principal=True)
    async def get_customer(request: Any, customer_id: str, principal: Principal) -> Any:
        raw = customers.get(customer_id.encode())
        state = None if raw is None else decode_customer(raw, customers.get)
        if state is None or not principal.can_see(route(state, routing),
                                                  team_of(state, routing)):
            raise NotFound(f"no customer {customer_id!r}")  # the same for one not theirs
        report = customer_report(state, bands.current, rules.state)
        if survey_memory is not None:
            report["surveys"] = memory_report(survey_memory.get(memory_key(customer_id)))
        return report

    @json_view(with_principal=True)
    async def erase_customer(request: Any, customer_id: str, principal: Principal) -> Any:
        if not principal.may_erase:
            raise Forbidden("erasure needs the shared API token or a user of role admin")
        must_serve(app)
        if erase is None or customers.get(customer_id.encode()) is None:
            raise NotFound(f"no customer {customer_id!r}")
        redacted = 0
        if alerts is not None:  # first the alert cases, on every worker (all or none)
            params = {"customer_id": customer_id, "actor": principal.name}
            shares = await cluster.gather(
                "/internal/alert-redactions", params, lambda: {}, alerts.partitions, "POST",
                lambda: _redact_here(alerts.cases, customer_id, principal.name))
            redacted = sum(share.get("redacted", 0) for share in shares)
        receipt = await erase(customer_id)
        if receipt is None:
            raise NotFound(f"no customer {customer_id!r}")
        receipt["deleted"]["alert_cases_redacted"] = redacted
        log.warning("customer %s erased by %s",
                    hashlib.sha256(customer_id.encode()).hexdigest()[:12], principal.name)
        return {"erased": customer_id, "by": principal.name, **receipt}

    class CustomerView(faust.web.View):
        """GET /api/customers/{customer_id}, answered by the worker that owns them."""

        async def get(self, request: Any, customer_id: str) -> Any:
            return await forward(self.web, request, customers.name, customer_id.encode(),
                                 principal_of, lambda: get_customer(
                                     self, request, customer_id=customer_id))

    class EraseCustomer(faust.web.View):
        """POST /api/customers/{customer_id}/erase, answered by the worker that owns it."""

        async def post(self, request: Any, customer_id: str) -> Any:
            return await forward(self.web, request, customers.name, customer_id.encode(),
                                 principal_of, lambda: erase_customer(
                                     self, request, customer_id=customer_id))

    app.page("/api/customers/{customer_id}")(CustomerView)
    app.page("/api/customers/{customer_id}/erase")(EraseCustomer)

    @app.page("/api/scores/{dimension}")
    @json_view(with_principal=True)
    async def rank_groups(request: Any, dimension: str, principal: Principal) -> Any:
        query = request.query
        check_dimension(dimension, principal)
        spec = pick_window(rules.windows, query.get("window", "day"))
        metric = query.get("metric", "nps")
        if metric not in METRICS:
            raise BadRequest(f"metric: one of {', '.join(METRICS)}, not {metric!r}")
        current, previous = current_and_previous(spec, parse_at(query.get("at"), _now))
        which = query.get("which", "current")
        if which not in {"current", "previous"}:
            raise BadRequest(f"which: current or previous, not {which!r}")
        min_n = parse_count(query.get("min_n", "1"))
        why_hidden = None
        if dimension == "agent" and min_n < agent_min_answers:  # fairness: never fewer
            min_n = agent_min_answers
            why_hidden = (f"agents are ranked from {agent_min_answers} {metric} answers "
                          "(CXSTREAM_AGENT_MIN_ANSWERS)")
        start = current if which == "current" else previous
        tallies = await gathered(dimension, {(spec.name, start)}, None)
        return ranking(dimension, spec, start, metric, min_n, tallies, rules.conventions,
                       rules.journey.order() if dimension == "stage" else None, why_hidden)

    @app.page("/api/scores/{dimension}/{key}")
    @json_view(with_principal=True)
    async def get_group_scores(request: Any, dimension: str, key: str,
                               principal: Principal) -> Any:
        check_dimension(dimension, principal)
        at = parse_at(request.query.get("at"), _now)
        slices = {(spec.name, start) for spec in rules.windows
                  for start in current_and_previous(spec, at)}
        tallies = await gathered(dimension, slices, key)
        return group_report(dimension, key, rules.windows, at, tallies, rules.conventions)

    @app.page("/api/tallies/{dimension}")
    @json_view(with_principal=True)
    async def list_tallies(request: Any, dimension: str, principal: Principal) -> Any:
        if not principal.sees_all:
            raise Forbidden("the raw tallies are for leads, admins and the shared API token")
        check_dimension(dimension)
        tallies = await gathered(dimension, None, None)
        return {"dimension": dimension, "tallies": [
            {"window": window, "start": start, "key": key, **tally.model_dump()}
            for (window, start, key), tally in sorted(tallies.items())]}

    document = openapi_document([spec.name for spec in rules.windows])

    @app.page("/api/openapi.json")
    async def serve_openapi(web: Any, request: Any) -> Any:
        return web.json(document)  # no data: the API's description, open like /healthz

    @app.page("/api/value-bands")
    @json_view
    async def get_value_bands(request: Any) -> Any:
        return bands.current.describe()

    if alerts is not None:
        _register_alert_views(app, cluster, alerts, json_view, forward, principal_of)
    if priorities is not None:
        _register_priority_views(app, cluster, priorities, json_view)

    @app.page("/internal/partials")
    @json_view(machine_only=True)
    async def serve_partials(request: Any) -> Any:
        dimension = request.query.get("dimension", "")
        check_dimension(dimension)
        slices = parse_slices(request.query.get("slices", "all"))
        only = request.query.get("partition")
        return cluster.local_partials(dimension, slices, request.query.get("key"),
                                      None if only is None else parse_partition(only))

    @app.page("/internal/value-histograms")
    @json_view(machine_only=True)
    async def serve_value_histograms(request: Any) -> Any:
        return cluster.local_value_histograms()


def check_text_fields(body: dict[str, Any]) -> None:
    """Refuse a string that is not text (a lone surrogate, which JSON's \\u escapes can
    write but no UTF-8 encoder takes), naming its field: it would fail when the case is
    written, after the action was taken."""
    for name, value in body.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                field = str(name)[:64].encode("utf-8", "backslashreplace").decode()
                raise BadRequest(f"{field}: not valid text (a lone surrogate at "
                                 f"character {exc.start})") from exc


def parse_count(raw: str) -> int:
    """``min_n``: from 1 to a billion (a larger one would also not fit the answer's JSON)."""
    return parse_bounded(raw, "min_n", 1, MAX_COUNT)


def parse_partition(raw: str) -> int:
    if not raw.isdigit():
        raise BadRequest(f"partition: a partition number, not {raw!r}")
    return int(raw)


def check_dimension(dimension: str, principal: Principal | None = None) -> None:
    """A known dimension, and one ``principal`` may see: an agent's scores are about a
    person, for leads, admins and machines only."""
    if dimension not in DIMENSIONS:
        raise BadRequest(f"dimension: one of {', '.join(DIMENSIONS)}, not {dimension!r}")
    if dimension == "agent" and principal is not None and not principal.sees_all:
        raise Forbidden("the scores of agents are for leads, admins and the shared API token")


def _now() -> datetime:
    return datetime.now(UTC)


RANK_BY = ("value", "customers", "mix")
ISSUE_KINDS = ("touchpoint", "topic")


def priorities_query(query: Any, board: PriorityBoard, now: datetime
                     ) -> tuple[int, int, dict[str, Any]]:
    """(window start, previous start, ranking options) of a priorities request."""
    for name in query:
        if name not in ("at", "rank_by", "kind", "by", "limit"):
            raise BadRequest(f"{name}: not a parameter; parameters are at, rank_by, kind, "
                             "by and limit")
    config = board.config
    at = parse_at(query.get("at"), lambda: now)
    start = signal_window(at.timestamp(), config)
    kept = counted_windows(now.timestamp(), config)
    if start not in kept:
        raise BadRequest(f"at: issues are counted for the current and the previous "
                         f"{config.window_hours:g} h windows only (from "
                         f"{from_epoch(kept[1]).isoformat()})")
    rank_by = query.get("rank_by", config.rank_by)
    if rank_by not in RANK_BY:
        raise BadRequest(f"rank_by: one of {', '.join(RANK_BY)}, not {rank_by!r}")
    kind = query.get("kind") or None
    if kind is not None and kind not in ISSUE_KINDS:
        raise BadRequest(f"kind: one of {', '.join(ISSUE_KINDS)}, not {kind!r}")
    by = query.get("by", "issue")
    if by not in ("issue", "area"):
        raise BadRequest(f"by: issue or area, not {by!r}")
    limit = parse_bounded(query.get("limit", "50"), "limit", 1, MAX_PAGE)
    return start, start - config.window_seconds, {
        "rank_by": rank_by, "kind": kind, "by_area": by == "area", "limit": limit}


def _register_priority_views(app: Any, cluster: Cluster, board: PriorityBoard,
                             json_view: Any) -> None:
    @app.page("/api/priorities")
    @json_view
    async def get_priorities(request: Any) -> Any:
        start, previous, options = priorities_query(request.query, board, _now())
        starts = {start, previous}
        params = {"starts": ",".join(str(s) for s in sorted(starts))}
        shares = await cluster.gather("/internal/priorities", params,
                                      lambda: board.local(cluster.active_partitions(),
                                                          starts))
        summed = counts((row[0], row[1], row[2]) for share in shares
                        for row in share["rows"])
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

    @app.page("/internal/priorities")
    @json_view(machine_only=True)
    async def serve_priorities(request: Any) -> Any:
        raw = request.query.get("starts", "")
        try:
            starts = {int(part) for part in raw.split(",") if part}
        except ValueError as exc:
            raise BadRequest(f"starts: window starts in epoch seconds, not {raw!r}") from exc
        return board.local(cluster.active_partitions(), starts)


def _register_alert_views(app: Any, cluster: Cluster, alerts: AlertsApi,
                          json_view: Any, forward: Forwarder,
                          principal_of: Callable[[Any], Principal | None]) -> None:
    cases = alerts.cases

    @app.page("/api/alerts")
    @json_view(with_principal=True)
    async def list_alerts(request: Any, principal: Principal) -> Any:
        query = request.query
        for name in query:
            if name not in (*ALERT_FILTERS, "limit", "offset"):
                raise BadRequest(f"{name}: not a filter; filters are "
                                 f"{', '.join(ALERT_FILTERS)}, with limit and offset")
        filters = {name: query[name] for name in ALERT_FILTERS if query.get(name)}
        offset, limit = page_bounds(query)
        first = offset + limit  # each worker's first rows: the page is among them
        shares = await cluster.gather(
            "/internal/alerts", {**filters, **viewer_params(principal), "first": str(first)},
            lambda: local_rows(cases, filters, principal, first),
            partition_count=alerts.partitions)
        rows = [row for share in shares for row in share["alerts"]]
        total = sum(share.get("matched", len(share["alerts"])) for share in shares)
        return page(filter_rows(rows, query, principal), query, total)

    @json_view(machine_only=True)
    async def redact_share(request: Any) -> Any:
        customer_id = request.query.get("customer_id", "")
        if not customer_id:
            raise BadRequest("customer_id: required")
        must_serve(app)
        return await _redact_here(cases, customer_id, request.query.get("actor", "api"))

    class RedactAlertCases(faust.web.View):
        """POST /internal/alert-redactions?customer_id=&actor=: this worker's share of an
        erasure (its cases of the customer redacted)."""

        async def post(self, request: Any) -> Any:
            return await redact_share(self, request)

    app.page("/internal/alert-redactions")(RedactAlertCases)

    @app.page("/internal/alerts")
    @json_view(machine_only=True)
    async def serve_alerts(request: Any) -> Any:
        first = request.query.get("first")
        return local_rows(cases, {name: request.query[name] for name in ALERT_FILTERS
                                  if request.query.get(name)}, viewer_of(request.query),
                          None if first is None else parse_bounded(first, "first", 1,
                                                                   2 * MAX_COUNT))

    @json_view(with_principal=True)
    async def show_alert(request: Any, alert_id: str, principal: Principal) -> Any:
        case = cases.get(alert_id)
        if case is None or not principal.can_see(case.owner, case.team):
            raise NotFound(f"no alert {alert_id!r}")
        customer = None
        if case.alert.customer_id:
            customer = await _customer_report(app, forward.credentials, principal,
                                              case.alert.customer_id)
        return {"alert": {**case_row(case, _now()),
                          **case.model_dump(mode="json", exclude={"history"})},
                "history": [change.model_dump(mode="json") for change in case.history],
                "customer": customer}

    class AlertView(faust.web.View):
        """GET /api/alerts/{alert_id}: the alert, its history, the customer's state."""

        async def get(self, request: Any, alert_id: str) -> Any:
            return await forward(self.web, request, cases.table.name, alert_id.encode(),
                                 principal_of,
                                 lambda: show_alert(self, request, alert_id=alert_id))

    app.page("/api/alerts/{alert_id}")(AlertView)

    @json_view(with_principal=True)
    async def act(request: Any, alert_id: str, action: str, principal: Principal) -> Any:
        if action not in ACTIONS:
            raise NotFound(f"no action {action!r}; actions are {', '.join(ACTIONS)}")
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError as exc:
            raise BadRequest(f"body: not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise BadRequest("body: a JSON object")
        check_text_fields(body)
        must_serve(app)
        case = await cases.command(alert_id, action, principal, body)
        return {"alert": {**case_row(case, _now()),
                          **case.model_dump(mode="json", exclude={"history"})},
                "change": case.last_change.model_dump(mode="json")}

    class AlertAction(faust.web.View):
        """POST /api/alerts/{alert_id}/{action}: ack, assign, note, snooze, resolve."""

        async def post(self, request: Any, alert_id: str, action: str) -> Any:
            return await forward(self.web, request, cases.table.name, alert_id.encode(),
                                 principal_of, lambda: act(
                                     self, request, alert_id=alert_id, action=action))

    app.page("/api/alerts/{alert_id}/{action}")(AlertAction)


async def _customer_report(app: Any, credentials: Credentials, principal: Principal,
                           customer_id: str) -> Any:
    """The customer's current report as ``principal`` may see it, from whichever worker
    owns them (through the API, as that principal)."""
    url = str(URL(str(app.conf.canonical_url)).with_path(f"/api/customers/{customer_id}"))
    headers = credentials.forward_headers(principal)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(url, headers=headers)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


class Forwarder:
    """Answers a request here when this worker owns the key's partition, else asks the
    owner: same method, path and body, with this worker's credential and the caller's
    name signed (Faust's own routing relays every header, the caller's token too, and
    drops the body)."""

    def __init__(self, app: Any, credentials: Credentials) -> None:
        self.app = app
        self.credentials = credentials

    async def __call__(self, web: Any, request: Any, table_name: str, key: bytes,
                       principal_of: Callable[[Any], Principal | None],
                       local: Callable[[], Awaitable[Any]]) -> Any:
        if self.app.should_stop:  # the local view checks the caller, then says so
            return await local()
        try:
            owner = URL(str(self.app.router.key_store(table_name, key)))
        except KeyError:
            return web.json({"error": "the partition has no owner right now (a rebalance "
                                      "is under way); retry shortly"}, status=503,
                            headers={"Retry-After": "2"})
        own = URL(str(self.app.conf.canonical_url))
        if (owner.host, owner.port) == (own.host, own.port):
            return await local()
        principal = principal_of(request)
        if principal is None:
            return web.json({"error": "missing or wrong bearer token"}, status=401)
        target = str(request.url.with_host(owner.host).with_port(owner.port))
        headers = self.credentials.forward_headers(principal)
        headers.update({name: value for name, value in request.headers.items()
                        if name.lower() in {"content-type", "accept"}})
        async with httpx.AsyncClient(timeout=15) as client:
            response = await client.request(request.method, target, headers=headers,
                                            content=await request.read())
        # the owner's Retry-After too: a caller asked to come back is told when
        relayed = {"Retry-After": response.headers["Retry-After"]} \
            if "Retry-After" in response.headers else None
        return web.bytes(response.content, content_type=response.headers.get(
            "content-type", "application/json").split(";")[0], status=response.status_code,
            headers=relayed)
