"""The API's query parameters and bodies, each checked with an error naming the field
(a 400, never a 5xx)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cxstream.alerts.priorities import counted_windows, signal_window
from cxstream.scoring.groups import BY, DIMENSIONS, DRIVER_WINDOWS, KEYED_DIMENSIONS
from cxstream.scoring.windows import WindowSpec, from_epoch, window_start
from cxstream.streams.issues.priorities import PriorityBoard
from cxstream.streams.users import Principal
from cxstream.streams.web.errors import BadRequest, Forbidden

METRICS = ("nps", "csat", "ces")
ALERT_FILTERS = ("owner", "team", "status", "severity", "rule", "customer_id")
#: the alert list's text search: cases holding every word (summary, customer, segment,
#: rule, owner, team), at most 8 words
SEARCH = "q"
ACTIONS = ("ack", "assign", "note", "snooze", "resolve")
MAX_PAGE = 500
#: alerts one bulk action may name (each is an action of its own, maybe forwarded)
MAX_BULK = 200
MAX_COUNT = 10**9
RANK_BY = ("value", "customers", "mix")
ISSUE_KINDS = ("touchpoint", "topic")


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



def parse_alert_ids(raw: Any) -> list[str]:
    """``alert_ids`` of a bulk action: 1 to MAX_BULK strings, repeats dropped."""
    if (not isinstance(raw, list) or not raw or len(raw) > MAX_BULK
            or not all(isinstance(item, str) and 0 < len(item) <= 200 for item in raw)):
        raise BadRequest(f"alert_ids: a list of 1 to {MAX_BULK} alert ids")
    return list(dict.fromkeys(raw))


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


def check_tally_dimension(dimension: str) -> None:
    """A dimension of the partials table: a group dimension or a part dimension."""
    if dimension not in KEYED_DIMENSIONS:
        raise BadRequest(f"dimension: one of {', '.join(KEYED_DIMENSIONS)}, not "
                         f"{dimension!r}")


def drivers_query(query: Any, dimension: str, specs: tuple[WindowSpec, ...]
                  ) -> tuple[str, WindowSpec, datetime]:
    """(by, window, at) of a drivers request."""
    for name in query:
        if name not in ("by", "window", "at"):
            raise BadRequest(f"{name}: not a parameter; parameters are by, window, at")
    choices = BY[dimension]
    by = query.get("by", choices[0])
    if by not in choices:
        raise BadRequest(f"by: one of {', '.join(choices)} for a {dimension}, not {by!r}")
    window = query.get("window", DRIVER_WINDOWS[0])
    if window not in DRIVER_WINDOWS:
        raise BadRequest(f"window: one of {', '.join(DRIVER_WINDOWS)} (the windows whose "
                         f"groups are kept by part), not {window!r}")
    return by, pick_window(specs, window), parse_at(query.get("at"), now)


#: the days a trend may cover (the day windows are kept 62 days)
MAX_TREND_DAYS = 60


def trend_query(query: Any) -> tuple[str, int, datetime]:
    """(metric, days, at) of a trend request."""
    for name in query:
        if name not in ("metric", "days", "at"):
            raise BadRequest(f"{name}: not a parameter; parameters are metric, days, at")
    metric = query.get("metric", "nps")
    if metric not in METRICS:
        raise BadRequest(f"metric: one of {', '.join(METRICS)}, not {metric!r}")
    days = parse_bounded(query.get("days", "30"), "days", 2, MAX_TREND_DAYS)
    return metric, days, parse_at(query.get("at"), now)


def check_dimension(dimension: str, principal: Principal | None = None) -> None:
    """A known dimension, and one ``principal`` may see: an agent's scores are about a
    person, for leads, admins and machines only."""
    if dimension not in DIMENSIONS:
        raise BadRequest(f"dimension: one of {', '.join(DIMENSIONS)}, not {dimension!r}")
    if dimension == "agent" and principal is not None and not principal.sees_all:
        raise Forbidden("the scores of agents are for leads, admins and the shared API token")


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


def answers_query(query: Any, specs: tuple[WindowSpec, ...]
                  ) -> tuple[str | None, float | None, int, bool]:
    """(survey, since (epoch seconds), limit, comments only) of a group's answers request:
    ``window`` keeps the answers of its current window (at ``at``, default now)."""
    for name in query:
        if name not in ("survey", "window", "at", "limit", "comments"):
            raise BadRequest(f"{name}: not a parameter; parameters are survey, window, at, "
                             "limit, comments")
    survey = query.get("survey")
    if survey is not None and survey not in METRICS:
        raise BadRequest(f"survey: one of {', '.join(METRICS)}, not {survey!r}")
    since = None
    if "window" in query:
        spec = pick_window(specs, query["window"])
        since = float(window_start(parse_at(query.get("at"), now).timestamp(), spec.seconds))
    comments = query.get("comments", "all")
    if comments not in ("all", "only"):
        raise BadRequest(f"comments: all or only, not {comments!r}")
    return (survey, since, parse_bounded(query.get("limit", "50"), "limit", 1, MAX_PAGE),
            comments == "only")


def parse_starts(raw: str) -> set[int]:
    """``starts``: window starts in epoch seconds, comma-separated."""
    try:
        return {int(part) for part in raw.split(",") if part}
    except ValueError as exc:
        raise BadRequest(f"starts: window starts in epoch seconds, not {raw!r}") from exc


def now() -> datetime:
    return datetime.now(UTC)
