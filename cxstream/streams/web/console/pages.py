"""The console's pages, one ``faust.web.View`` class each, bound to one worker's console
when registered (``register_console``)."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import faust
import jinja2
from aiohttp import web as aioweb
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from cxstream.scoring.groups import BY
from cxstream.streams.services import WorkerServices
from cxstream.streams.users import COOKIE, Principal
from cxstream.streams.web.console.live import LiveInbox
from cxstream.streams.web.console.rendering import (
    environment,
    form_token,
    local_time,
    snooze_until,
    timeline,
)
from cxstream.streams.web.errors import status_of
from cxstream.streams.web.worker_api import WorkerApi

LIVE_EVERY_SECONDS = 2.0
#: a live stream ends after this long and the page opens a new one (with what it has):
#: no connection outlives a worker's stop, or keeps a worker it no longer reaches
LIVE_STREAM_SECONDS = 60.0
STATIC = {"console.js": "text/javascript", "console.css": "text/css"}


class Console:
    """One worker's console: the API's calls, the templates, the sign-in limit and the
    live inbox."""

    def __init__(self, services: WorkerServices, api: WorkerApi) -> None:
        settings = services.settings
        self.api = api
        self.services = services
        self.credentials = services.credentials
        self.config = services.files.rules
        self.windows = services.core.rules.windows
        self.tagger = services.files.tagger
        self.env = environment()
        self.public_url = settings.public_url or settings.canonical_url
        self.session_seconds = int(settings.console_session_hours * 3_600)
        self.closing = asyncio.Event()  # set when the worker stops: live streams end
        self.live = LiveInbox(self.inbox, LIVE_EVERY_SECONDS)
        # failed sign-ins per client address, in a moving window kept in this process
        self.sign_ins = MovingWindowRateLimiter(MemoryStorage())
        self.sign_in_limit = RateLimitItemPerMinute(settings.sign_in_attempts_per_minute)
        self.files = {name: (jinja2.PackageLoader("cxstream.streams.web.console", "static")
                             .get_source(self.env, name)[0]) for name in STATIC}

    async def inbox(self, principal: Principal, view: Any) -> list[dict[str, Any]]:
        """The rows of one inbox view (console.inbox.InboxView) for the live pages."""
        found = await self.api.alerts(principal, view.api_query(principal))
        rows: list[dict[str, Any]] = found["alerts"]
        return rows

    def render(self, template: str, principal: Principal | None, **context: Any) -> str:
        zone = principal.timezone if principal else None
        return self.env.get_template(template).render(
            user=principal, zone=zone, when=lambda iso: local_time(iso, zone), **context)

    def signed_in(self, request: Any) -> tuple[str, Principal] | None:
        """(session cookie, user) of a signed-in request; None: not signed in, or the
        session expired or was ended by a change of the user's token."""
        session = request.cookies.get(COOKIE)
        principal = self.credentials.from_session(session)
        return (session, principal) if session and principal else None

    def html(self, text: str, status: int = 200) -> aioweb.Response:
        return aioweb.Response(text=text, status=status, content_type="text/html",
                               headers={"Cache-Control": "no-store",
                                        "Content-Security-Policy":
                                            "default-src 'self'; frame-ancestors 'none'",
                                        "X-Content-Type-Options": "nosniff"})

    def error_page(self, principal: Principal | None, status: int, message: str
                   ) -> aioweb.Response:
        return self.html(self.render("error.html", principal, message=message,
                                     status=status), status)

    async def stop_live_streams(self, sender: Any, **kwargs: Any) -> None:
        self.closing.set()
        await self.live.shut()


def to_login(reason: str | None = None) -> aioweb.Response:
    query = f"?{urlencode({'reason': reason})}" if reason else ""
    return aioweb.HTTPSeeOther(f"/console/login{query}")


class ConsoleView(faust.web.View):
    """A page; ``signed`` runs ``page(principal, session)`` for a signed-in user (anyone
    else goes to the login page) and shows the API's refusals as an error page."""

    console: ClassVar[Console]

    async def signed(self, request: Any,
                     page: Callable[[Principal, str], Awaitable[Any]]) -> Any:
        signed = self.console.signed_in(request)
        if signed is None:
            return to_login()
        session, principal = signed
        try:
            return await page(principal, session)
        except Exception as exc:
            status = status_of(exc)
            if status is None:
                raise
            return self.console.error_page(principal, status, str(exc))


class StaticFile(ConsoleView):
    async def get(self, request: Any, name: str) -> Any:
        if name not in STATIC:
            return aioweb.Response(status=404, text="not found")
        return aioweb.Response(text=self.console.files[name], content_type=STATIC[name],
                               headers={"Cache-Control": "max-age=300"})


class Login(ConsoleView):
    async def get(self, request: Any) -> Any:
        console = self.console
        return console.html(console.render("login.html", None,
                                           reason=request.query.get("reason")))

    async def post(self, request: Any) -> Any:
        console = self.console
        client = request.remote or "unknown"
        if not console.sign_ins.test(console.sign_in_limit, client):
            return console.html(console.render(
                "login.html", None, reason="Too many failed sign-ins from here. Wait a "
                                           "minute and try again."), 429)
        form = await request.post()
        session = console.credentials.session_for(str(form.get("token", "")).strip())
        if session is None:
            console.sign_ins.hit(console.sign_in_limit, client)
            return console.html(console.render(
                "login.html", None, reason="That token is not known. Check it and try "
                                           "again."), 401)
        response = aioweb.HTTPSeeOther("/console")
        response.set_cookie(COOKIE, session[0], httponly=True, samesite="Strict", path="/",
                            secure=console.public_url.startswith("https://"),
                            max_age=console.session_seconds)
        return response


class Logout(ConsoleView):
    async def post(self, request: Any) -> Any:
        response = to_login("You are signed out.")
        response.del_cookie(COOKIE, path="/")
        return response


class AlertPage(ConsoleView):
    async def get(self, request: Any, alert_id: str) -> Any:
        async def page(principal: Principal, session: str) -> Any:
            console = self.console
            data = await console.api.alert(principal, alert_id)
            alert = data["alert"]
            earlier: list[dict[str, Any]] = []
            if alert.get("customer_id"):
                earlier = await self.earlier(principal, alert["customer_id"], alert_id)
            return console.html(console.render(
                "alert.html", principal, alert=alert, history=data["history"],
                trend=await self.group_trend(principal, alert),
                customer=data["customer"], earlier=earlier,
                timeline=timeline(console.tagger, data["customer"], data),
                categories=console.config.lifecycle.resolution_categories,
                form_token=form_token(session), done=request.query.get("done"),
                failed=request.query.get("error")))
        return await self.signed(request, page)

    async def group_trend(self, principal: Principal, alert: dict[str, Any]
                          ) -> list[dict[str, Any]] | None:
        """A group drop's score per day, for its chart (None: not a group drop, or the
        trend cannot be had right now: the alert itself still shows)."""
        raised = alert.get("alert") or {}  # the case holds the alert as raised
        reason = raised.get("reason") or {}
        if raised.get("rule") != "segment_drop" or "metric" not in reason:
            return None
        dimension = str(reason.get("dimension", "segment"))
        key = str(reason.get("key", raised.get("segment")))
        try:
            found = await self.console.api.trend(principal, dimension, key, {
                "metric": str(reason["metric"]), "days": "30"})
        except Exception as exc:
            if status_of(exc) is None:
                raise
            return None
        points: list[dict[str, Any]] = found["groups"][key]
        return points

    async def earlier(self, principal: Principal, customer_id: str, alert_id: str
                      ) -> list[dict[str, Any]]:
        """The customer's other alerts, newest first (none when the list cannot be had
        right now: the alert itself still shows)."""
        try:
            found = await self.console.api.alerts(principal, {"customer_id": customer_id,
                                                              "limit": "50"})
        except Exception as exc:
            if status_of(exc) is None:
                raise
            return []
        return sorted((row for row in found["alerts"] if row["alert_id"] != alert_id),
                      key=lambda row: row["created_at"], reverse=True)


class AlertAction(ConsoleView):
    async def post(self, request: Any, alert_id: str, action: str) -> Any:
        signed = self.console.signed_in(request)
        if signed is None:
            return to_login()
        session, principal = signed
        form = {k: str(v) for k, v in (await request.post()).items()}
        if not hmac.compare_digest(form.get("form_token", ""), form_token(session)):
            return self.console.error_page(principal, 403, "This form has expired. Go "
                                           "back, reload the page and try again.")
        body: dict[str, Any] = {k: v for k, v in form.items()
                                if k in {"to", "text", "category", "note"} and v}
        page = f"/console/alerts/{quote(alert_id)}"
        try:
            if action == "snooze":
                body["until"] = snooze_until(form)  # ValueError names the field
            await self.console.api.act(principal, alert_id, action, body)
        except Exception as exc:
            if status_of(exc) is None and not isinstance(exc, ValueError):
                raise
            return aioweb.HTTPSeeOther(f"{page}?{urlencode({'error': str(exc)})}")
        return aioweb.HTTPSeeOther(f"{page}?{urlencode({'done': action})}")


class ScoresPage(ConsoleView):
    async def get(self, request: Any) -> Any:
        async def page(principal: Principal, session: str) -> Any:
            console = self.console
            names = [spec.name for spec in console.windows]
            window = request.query.get("window", "day" if "day" in names else names[0])
            metric = request.query.get("metric", "nps")
            if window not in names or metric not in {"nps", "csat", "ces"}:
                return console.error_page(principal, 400, "Pick a window and a metric "
                                                          "from the lists.")
            # the scores of agents are about people: for leads and admins (web.api)
            shown = ("segment", "channel", "touchpoint", "stage") + (
                ("agent",) if principal.sees_all else ())
            tables = [await self.table(principal, dimension, window, metric)
                      for dimension in shown]
            model = await console.api.model() if console.api.services.core.writer.live \
                else None
            return console.html(console.render("scores.html", principal, tables=tables,
                                               window=window, metric=metric, windows=names,
                                               model=model))
        return await self.signed(request, page)

    async def table(self, principal: Principal, dimension: str, window: str, metric: str
                    ) -> dict[str, Any]:
        api = self.console.api
        ranked = await api.ranking(principal, dimension, {"window": window, "metric": metric})
        trends = await api.trend(principal, dimension, None, {"metric": metric, "days": "30"})
        drivers = await api.drivers_of_dimension(principal, dimension, metric)
        return {"dimension": dimension, "start": ranked["start"], "rows": ranked["groups"],
                "hidden": ranked.get("hidden"), "trends": trends["groups"],
                "drivers": drivers}


class GroupPage(ConsoleView):
    """One group: its scores in every window, and the recent answers and comments that
    make them (leads and admins: they name customers)."""

    async def get(self, request: Any) -> Any:
        async def page(principal: Principal, session: str) -> Any:
            console = self.console
            dimension = request.query.get("dimension", "")
            key = request.query.get("key", "")
            names = [spec.name for spec in console.windows]
            window = request.query.get("window", "day" if "day" in names else names[0])
            metric = request.query.get("metric", "nps")
            comments = request.query.get("comments", "all")
            if window not in [*names, "kept"] or metric not in {"nps", "csat", "ces"} \
                    or comments not in {"all", "only"}:
                return console.error_page(principal, 400, "Pick a window, a metric and "
                                                          "which answers from the lists.")
            query = {"survey": metric, "limit": "200", "comments": comments}
            if window != "kept":
                query["window"] = window
            answers = await console.api.group_answers(principal, dimension, key, query)
            scores = await console.api.group(principal, dimension, key, {})
            by = request.query.get("by")
            drivers = await console.api.drivers(principal, dimension, key,
                                                {"by": by} if by else {})
            trend = await console.api.trend(principal, dimension, key,
                                            {"metric": metric, "days": "30"})
            return console.html(console.render(
                "group.html", principal, dimension=dimension, key=key, scores=scores,
                answers=answers, window=window, metric=metric, comments=comments,
                windows=names, drivers=drivers, bys=BY.get(dimension, ()),
                trend=trend["groups"][key]))
        return await self.signed(request, page)


class PrioritiesPage(ConsoleView):
    async def get(self, request: Any) -> Any:
        async def page(principal: Principal, session: str) -> Any:
            console = self.console
            rank_by = request.query.get("rank_by", console.config.priorities.rank_by)
            by = request.query.get("by", "issue")
            if rank_by not in {"value", "customers", "mix"} or by not in {"issue", "area"}:
                return console.error_page(principal, 400, "Pick a ranking from the list.")
            if console.services.core.priorities is None:
                return console.error_page(principal, 404, "Priorities are switched off in "
                                          "the rules file (priorities.enabled).")
            ranked = await console.api.priorities({"rank_by": rank_by, "by": by,
                                                   "limit": "50"})
            return console.html(console.render("priorities.html", principal, ranked=ranked,
                                               rank_by=rank_by, by=by))
        return await self.signed(request, page)
