"""The worker's HTTP API: customers, group scores, rankings, and the shares behind them.

Every /api and /internal endpoint needs ``Authorization: Bearer <CXSTREAM_API_TOKEN>``;
without a configured token they all answer 401. /metrics stays open for Prometheus.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import faust

from cxstream.scoring.customer_view import customer_report
from cxstream.scoring.fold import FoldRules
from cxstream.scoring.groups import DIMENSIONS
from cxstream.scoring.reports import current_and_previous, group_report, merge_rows, ranking
from cxstream.scoring.windows import WindowSpec
from cxstream.streams.bands import BandsHolder
from cxstream.streams.cluster import Cluster, ClusterIncomplete
from cxstream.streams.state import decode_customer

METRICS = ("nps", "csat", "ces")


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
    return at.astimezone(UTC)


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


Handler = Callable[..., Awaitable[Any]]


def register_api(app: Any, customers: Any, cluster: Cluster, bands: BandsHolder,
                 rules: FoldRules, token: str | None,
                 erase: Callable[[str], Awaitable[bool]] | None = None) -> None:
    """Add the API's views to the Faust app."""

    def json_view(fun: Handler) -> Handler:
        """Check the token, run ``fun``, and turn its result or error into a JSON reply."""

        @functools.wraps(fun)
        async def view(web: Any, request: Any, **match: str) -> Any:
            if not is_authorized(request.headers, token):
                reason = ("missing or wrong bearer token" if token
                          else "no CXSTREAM_API_TOKEN configured")
                return web.json({"error": reason}, status=401)
            try:
                return web.json(await fun(request, **match))
            except BadRequest as exc:
                return web.json({"error": str(exc)}, status=400)
            except NotFound as exc:
                return web.json({"error": str(exc)}, status=404)
            except ClusterIncomplete as exc:
                return web.json({"error": str(exc)}, status=503)

        return view

    async def gathered(dimension: str, slices: set[tuple[str, int]] | None,
                       key: str | None) -> Any:
        joined = "all" if slices is None else ",".join(f"{w}:{s}" for w, s in sorted(slices))
        params = {"dimension": dimension, "slices": joined}
        if key is not None:
            params["key"] = key
        shares = await cluster.gather("/internal/partials", params,
                                      lambda: cluster.local_partials(dimension, slices, key))
        return merge_rows(tuple(row) for share in shares for row in share["rows"])

    @app.page("/api/customers/{customer_id}")
    @app.table_route(table=customers, match_info="customer_id")
    @json_view
    async def get_customer(request: Any, customer_id: str) -> Any:
        raw = customers.get(customer_id.encode())
        if raw is None:
            raise NotFound(f"no customer {customer_id!r}")
        return customer_report(decode_customer(raw), bands.current, rules.state)

    @json_view
    async def erase_customer(request: Any, customer_id: str) -> Any:
        if erase is None or not await erase(customer_id):
            raise NotFound(f"no customer {customer_id!r}")
        return {"erased": customer_id}

    class EraseCustomer(faust.web.View):
        """POST /api/customers/{customer_id}/erase, answered by the worker that owns it."""

        @app.table_route(table=customers, match_info="customer_id")
        async def post(self, request: Any, customer_id: str) -> Any:
            return await erase_customer(self, request, customer_id=customer_id)

    app.page("/api/customers/{customer_id}/erase")(EraseCustomer)

    @app.page("/api/scores/{dimension}")
    @json_view
    async def rank_groups(request: Any, dimension: str) -> Any:
        query = request.query
        check_dimension(dimension)
        spec = pick_window(rules.windows, query.get("window", "day"))
        metric = query.get("metric", "nps")
        if metric not in METRICS:
            raise BadRequest(f"metric: one of {', '.join(METRICS)}, not {metric!r}")
        current, previous = current_and_previous(spec, parse_at(query.get("at"), _now))
        which = query.get("which", "current")
        if which not in {"current", "previous"}:
            raise BadRequest(f"which: current or previous, not {which!r}")
        min_n = parse_count(query.get("min_n", "1"))
        start = current if which == "current" else previous
        tallies = await gathered(dimension, {(spec.name, start)}, None)
        return ranking(dimension, spec, start, metric, min_n, tallies, rules.conventions)

    @app.page("/api/scores/{dimension}/{key}")
    @json_view
    async def get_group_scores(request: Any, dimension: str, key: str) -> Any:
        check_dimension(dimension)
        at = parse_at(request.query.get("at"), _now)
        slices = {(spec.name, start) for spec in rules.windows
                  for start in current_and_previous(spec, at)}
        tallies = await gathered(dimension, slices, key)
        return group_report(dimension, key, rules.windows, at, tallies, rules.conventions)

    @app.page("/api/tallies/{dimension}")
    @json_view
    async def list_tallies(request: Any, dimension: str) -> Any:
        check_dimension(dimension)
        tallies = await gathered(dimension, None, None)
        return {"dimension": dimension, "tallies": [
            {"window": window, "start": start, "key": key, **tally.model_dump()}
            for (window, start, key), tally in sorted(tallies.items())]}

    @app.page("/api/value-bands")
    @json_view
    async def get_value_bands(request: Any) -> Any:
        return bands.current.describe()

    @app.page("/internal/partials")
    @json_view
    async def serve_partials(request: Any) -> Any:
        dimension = request.query.get("dimension", "")
        check_dimension(dimension)
        slices = parse_slices(request.query.get("slices", "all"))
        only = request.query.get("partition")
        return cluster.local_partials(dimension, slices, request.query.get("key"),
                                      None if only is None else parse_partition(only))

    @app.page("/internal/value-histograms")
    @json_view
    async def serve_value_histograms(request: Any) -> Any:
        return cluster.local_value_histograms()


def parse_count(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"min_n: a whole number, not {raw!r}") from exc
    if value < 1:
        raise BadRequest("min_n: at least 1")
    return value


def parse_partition(raw: str) -> int:
    if not raw.isdigit():
        raise BadRequest(f"partition: a partition number, not {raw!r}")
    return int(raw)


def check_dimension(dimension: str) -> None:
    if dimension not in DIMENSIONS:
        raise BadRequest(f"dimension: one of {', '.join(DIMENSIONS)}, not {dimension!r}")


def _now() -> datetime:
    return datetime.now(UTC)
