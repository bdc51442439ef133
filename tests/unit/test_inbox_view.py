"""The inbox's view (filters and page, from the query string) and the bulk action's
list of alerts: each checked with an error naming the field."""

from __future__ import annotations

import pytest

from cxstream.streams.users import Principal
from cxstream.streams.web.console.inbox import InboxView
from cxstream.streams.web.errors import BadRequest
from cxstream.streams.web.queries import MAX_BULK, parse_alert_ids

ANN = Principal("ann", ("smb-support",))


def test_a_view_keeps_its_filters_and_page_and_asks_the_api_for_them() -> None:
    view = InboxView.of({"severity": "critical", "team": " smb-support ", "mine": "1",
                         "offset": "50", "limit": "25", "unknown": "x"})
    assert view.api_query(ANN) == {"status": "unresolved", "severity": "critical",
                                   "team": "smb-support", "owner": "ann", "offset": "50",
                                   "limit": "25"}
    assert view.link(offset=75) == ("/console?severity=critical&status=unresolved&"
                                   "team=smb-support&mine=1&offset=75&limit=25")
    assert InboxView.of({"status": "resolved"}).value("status") == "resolved"
    assert hash(view) == hash(InboxView.of(dict(view.filters) | {
        "mine": "1", "offset": "50", "limit": "25"}))  # the live inbox's key


@pytest.mark.parametrize("query", [{"offset": "-1"}, {"limit": "0"}, {"limit": "201"},
                                   {"offset": "ten"}])
def test_a_bad_page_is_refused_naming_it(query: dict[str, str]) -> None:
    with pytest.raises(BadRequest, match=r"offset|limit"):
        InboxView.of(query)


def test_a_bulk_action_names_1_to_max_alerts_once_each() -> None:
    assert parse_alert_ids(["a", "b", "a"]) == ["a", "b"]
    for bad in (None, [], "a", [1], [""], ["x" * 201], ["a"] * (MAX_BULK + 1)):
        with pytest.raises(BadRequest, match="alert_ids"):
            parse_alert_ids(bad)
