"""Alert lists: this worker's share (``local_rows``: from the case index, costing what
it returns), the viewer a share is for, and the merge of every worker's shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cxstream.streams.alerting.case_index import (
    Bucket,
    CaseSummary,
    bucket_of,
    summary_list_order,
    summary_words,
    words_of,
)
from cxstream.streams.alerting.cases import AlertCases, case_row, sort_rows
from cxstream.streams.users import MACHINE, Principal
from cxstream.streams.web.queries import ALERT_FILTERS, SEARCH
from cxstream.streams.web.queries import now as _now


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

        customers, text = filters.get("customer_id"), filters.get(SEARCH)
        if text:
            matched, chosen = _of_search(cases, bucket_wanted, first, text, customers)
        elif customers is None:
            matched, chosen = cases.index().select(bucket_wanted, first)
        else:
            matched, chosen = _of_customers(cases, bucket_wanted, first,
                                            set(customers.split(",")))
    else:
        words = words_of(filters.get(SEARCH, ""), 8)
        kept = sorted((summary for summary in map(CaseSummary.of, cases.local())
                       if viewer.can_see(summary.owner, summary.team)
                       and words <= summary_words(summary)
                       and all(_matches_value(getattr(summary, name), name, value)
                               for name, value in filters.items() if name != SEARCH)),
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


def _of_search(cases: AlertCases, wanted: Callable[[Bucket], bool], first: int | None,
               text: str, customers: str | None) -> tuple[int, list[CaseSummary]]:
    """The unresolved cases holding every word of ``text`` (the index's search: the
    cases of its rarest word), of ``customers`` if given."""
    index = cases.index()
    only = None if customers is None else set(customers.split(","))
    rows = sorted((summary for alert_id in index.search(text)
                   if (summary := index.open[alert_id]) is not None
                   and (only is None or summary.customer_id in only)
                   and wanted(bucket_of(summary))), key=summary_list_order)
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
