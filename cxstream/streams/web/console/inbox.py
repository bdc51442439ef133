"""The console's inbox: a view (filters and a page) of the alerts a user may see, its
live updates, and one action on the alerts ticked in it.

A view is what the page's query string says: the API's alert filters (rule, severity,
status, team, owner, customer), ``mine`` (the user's own alerts), ``offset`` and
``limit``. The page, its live stream and the bulk form all carry it, so paging, filters
and a bulk action never lose the list the user was working through.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web as aioweb
from aiohttp_sse import sse_response

from cxstream.alerts.customer_rules import CUSTOMER_RULES
from cxstream.streams.users import Principal
from cxstream.streams.web.console.pages import (
    LIVE_EVERY_SECONDS,
    LIVE_STREAM_SECONDS,
    ConsoleView,
    to_login,
)
from cxstream.streams.web.console.rendering import form_token, later, local_time
from cxstream.streams.web.errors import BadRequest, status_of
from cxstream.streams.web.queries import ALERT_FILTERS, MAX_BULK, SEARCH

#: rows per inbox page unless the view asks for another count (at most PAGE_SIZES[-1])
PAGE_SIZES = (25, 50, 100, 200)
#: every rule an alert may come from, for the filter's choices
RULES = (*(rule.name for rule in CUSTOMER_RULES), "recurring_issue", "segment_drop")
BULK_ACTIONS = ("ack", "assign", "resolve")


@dataclass(frozen=True)
class InboxView:
    """The filters and the page of one inbox page (hashable: the live inbox polls each
    view once per tick, whatever the number of pages showing it)."""

    filters: tuple[tuple[str, str], ...] = (("status", "unresolved"),)
    mine: bool = False
    offset: int = 0
    limit: int = PAGE_SIZES[1]

    @classmethod
    def of(cls, query: Any) -> InboxView:
        """The view of a query string; a bad value raises BadRequest naming it."""
        filters = tuple((name, str(query[name]).strip()) for name in (*ALERT_FILTERS, SEARCH)
                        if str(query.get(name, "")).strip())
        if "status" not in query:
            filters = (("status", "unresolved"), *filters)
        filters = tuple(sorted(filters))  # one view, one key, however it was asked
        try:
            offset = int(query.get("offset", "0"))
            limit = int(query.get("limit", str(PAGE_SIZES[1])))
        except ValueError as exc:
            raise BadRequest("offset and limit: whole numbers") from exc
        if offset < 0 or not 1 <= limit <= PAGE_SIZES[-1]:
            raise BadRequest(f"offset: 0 or more; limit: 1 to {PAGE_SIZES[-1]}")
        return cls(filters, query.get("mine") in ("1", "on", "true"), offset, limit)

    def api_query(self, principal: Principal) -> dict[str, str]:
        """The API's query for this view (``mine``: the user as the owner)."""
        query = {name: value for name, value in self.filters if value}
        if self.mine:
            query["owner"] = principal.name
        return {**query, "offset": str(self.offset), "limit": str(self.limit)}

    def link(self, **changes: Any) -> str:
        """The inbox's address for this view with ``changes`` (another page, say)."""
        params = dict(self.filters)
        if self.mine:
            params["mine"] = "1"
        params.update(offset=str(changes.get("offset", self.offset)),
                      limit=str(changes.get("limit", self.limit)))
        return "/console?" + urlencode(params)

    def value(self, name: str) -> str:
        return dict(self.filters).get(name, "")


async def inbox_page(console: Any, principal: Principal, view: InboxView) -> dict[str, Any]:
    """One page of the view: its rows, how many match in all, and where it starts."""
    found: dict[str, Any] = await console.api.alerts(principal, view.api_query(principal))
    return found


class Inbox(ConsoleView):
    async def get(self, request: Any) -> Any:
        async def page(principal: Principal, session: str) -> Any:
            console = self.console
            try:
                view = InboxView.of(request.query)
                found = await inbox_page(console, principal, view)
            except BadRequest as exc:
                return console.error_page(principal, 400, str(exc))
            shown = len(found["alerts"])
            return console.html(console.render(
                "inbox.html", principal, rows=found["alerts"], total=found["total"],
                view=view, first=view.offset + 1 if shown else 0,
                last=view.offset + shown, rules=RULES, page_sizes=PAGE_SIZES,
                users=sorted(console.services.files.users.by_name),
                categories=console.config.lifecycle.resolution_categories,
                form_token=form_token(session), done=request.query.get("done"),
                failed=request.query.get("failed"), max_bulk=MAX_BULK))
        return await self.signed(request, page)


class InboxBulk(ConsoleView):
    """The bulk form: one action on the ticked alerts, one API request answered per
    alert; back to the same view, saying how many were done and which failed why."""

    async def post(self, request: Any) -> Any:
        signed = self.console.signed_in(request)
        if signed is None:
            return to_login()
        session, principal = signed
        form = await request.post()
        if not hmac.compare_digest(str(form.get("form_token", "")), form_token(session)):
            return self.console.error_page(principal, 403, "This form has expired. Go "
                                           "back, reload the page and try again.")
        try:
            view = InboxView.of({k: v for k, v in request.query.items()})
        except BadRequest as exc:
            return self.console.error_page(principal, 400, str(exc))
        action = str(form.get("action", ""))
        ids = [str(value) for value in form.getall("alert_id", [])]
        body: dict[str, Any] = {name: str(form[name]) for name in ("to", "category", "note")
                                if form.get(name)}
        if action not in BULK_ACTIONS or not ids:
            return aioweb.HTTPSeeOther(view.link() + "&" + urlencode(
                {"failed": "tick at least one alert and choose an action"}))
        try:
            answer = await self.console.api.act_on_many(
                principal, action, {"alert_ids": ids, **body})
        except Exception as exc:
            if status_of(exc) is None:
                raise
            return aioweb.HTTPSeeOther(view.link() + "&" + urlencode({"failed": str(exc)}))
        failures = "; ".join(f"{r['alert_id']}: {r['error']}" for r in answer["results"]
                             if r["status"] != 200)
        outcome = {"done": f"{action}: {answer['done']} of {len(answer['results'])}"}
        if failures:
            outcome["failed"] = failures[:500]
        return aioweb.HTTPSeeOther(view.link() + "&" + urlencode(outcome))


class InboxEvents(ConsoleView):
    """Server-sent events for one view: ``ready`` (the ids in it now: the page drops
    other rows), then ``alert`` / ``changed`` with a row's HTML for each alert new or
    changed since ``since`` (the page's newest change), ``gone`` for one that left the
    view, and ``bye`` when the stream ends (the page opens a new one)."""

    async def get(self, request: Any) -> Any:
        signed = self.console.signed_in(request)
        if signed is None:
            return aioweb.Response(status=401, text="sign in first")
        _, principal = signed
        try:
            view = InboxView.of(request.query)
        except BadRequest as exc:
            return aioweb.Response(status=400, text=str(exc))
        live = self.console.live
        if not live.open(principal, view):
            return aioweb.Response(status=429, text=(
                f"at most {live.max_per_user} live pages per user: close one"))
        try:
            return await self.stream_rows(request, principal, view)
        finally:
            live.close(principal, view)

    async def stream_rows(self, request: Any, principal: Principal, view: InboxView) -> Any:
        console = self.console
        since = request.query.get("since", "")
        row_template = console.env.get_template("row.html")
        ends = time.monotonic() + LIVE_STREAM_SECONDS
        seen: dict[str, str] | None = None
        version = 0

        def row_html(row: dict[str, Any]) -> str:
            return row_template.render(
                row=row, user=principal, zone=principal.timezone,
                when=lambda iso: local_time(iso, principal.timezone)).replace("\n", " ")

        async with sse_response(request) as stream:
            try:
                while (stream.is_connected() and not console.closing.is_set()
                       and time.monotonic() < ends):
                    version, rows = await console.live.wait(principal, version,
                                                            LIVE_EVERY_SECONDS * 2, view)
                    if rows is None:
                        continue
                    if seen is None:  # what the page may have missed before
                        await stream.send(" ".join(r["alert_id"] for r in rows),
                                          event="ready")
                        seen = {r["alert_id"]: since for r in rows}
                    for row in rows:
                        if later(row["updated_at"], seen.get(row["alert_id"])):
                            kind = "changed" if row["alert_id"] in seen else "alert"
                            await stream.send(row_html(row), event=kind, id=row["alert_id"])
                    current = {r["alert_id"]: r["updated_at"] for r in rows}
                    for gone in set(seen) - set(current):
                        await stream.send(gone, event="gone")
                    seen = current
                await stream.send("", event="bye")
            except ConnectionError:  # the page was closed meanwhile
                pass
        return stream
