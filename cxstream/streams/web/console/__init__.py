"""The support console: server-rendered pages at /console, worked with plain HTML forms,
enhanced by one small script (live inbox by server-sent events, times in the browser's
zone). No build step, no CDN.

Pages read and act through the worker's own HTTP API as the signed-in user (the worker's
credential and the user's name signed, streams.web.credentials), so they see and do exactly
what that user may (and reach any worker's partitions). Signing in with a user's token
gives a signed session in an HttpOnly, SameSite=Strict cookie (``Secure`` when
CXSTREAM_PUBLIC_URL is https), never the token itself; forms also carry a value derived
from the session, checked on every POST. Failed sign-ins are limited per client address
(CXSTREAM_SIGN_IN_ATTEMPTS_PER_MINUTE; the ``limits`` library's moving window).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import faust
import httpx
import jinja2
from aiohttp import web as aioweb
from aiohttp_sse import sse_response
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from yarl import URL

from cxstream.alerts.comment_tags import TopicTagger, load_tagger
from cxstream.alerts.config import RulesConfig
from cxstream.scoring.windows import WindowSpec
from cxstream.streams.settings import Settings
from cxstream.streams.users import COOKIE, Principal
from cxstream.streams.web.console.live import LiveInbox
from cxstream.streams.web.credentials import Credentials

log = logging.getLogger(__name__)
LIVE_EVERY_SECONDS = 2.0
#: a live stream ends after this long and the page opens a new one (with what it has):
#: no connection outlives a worker's stop, or keeps a worker it no longer reaches
LIVE_STREAM_SECONDS = 60.0
INBOX_LIMIT = 200
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cxstream.streams.web.console", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["due"] = due_text
    env.filters["label"] = label
    env.filters["money"] = money
    env.filters["value_text"] = value_text
    return env


def label(name: Any) -> str:
    """A field name for people: ``low_experience_reasons`` -> "Low experience reasons"."""
    text = str(name).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def money(value: Any) -> str:
    if isinstance(value, int | float):
        return f"{value:,.0f}"
    return "—"


def value_text(value: Any) -> str:
    """Any figure of a rule as text (lists joined, nested maps as "key value")."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(value_text(v) for v in value) or "—"
    if isinstance(value, dict):
        return "; ".join(f"{label(k)} {value_text(v)}" for k, v in value.items()) or "—"
    return str(value)


def due_text(seconds: int | None) -> str:
    """Time left to the deadline: "2 h 5 min left", "overdue by 12 min"."""
    if seconds is None:
        return "no deadline"
    late = seconds < 0
    left = abs(int(seconds))
    days, rest = divmod(left, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = max(rest // 60, 0 if days or hours else 1)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "",
             f"{minutes} min" if minutes and not days else ""]
    text = " ".join(p for p in parts if p) or "1 min"
    return f"overdue by {text}" if late else f"{text} left"


def local_time(iso: str | None, zone: str | None) -> str:
    """An ISO time in the user's zone (UTC without one: the script shows the browser's)."""
    if not iso:
        return "—"
    moment = datetime.fromisoformat(iso)
    tz = ZoneInfo(zone) if zone else UTC
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M ") + (zone or "UTC")


def form_token(session: str) -> str:
    """The value every form carries: a cross-site page cannot know it."""
    return hmac.new(session.encode(), b"cxstream-console-form", hashlib.sha256).hexdigest()


class Console:
    """Renders the pages; talks to the worker's own API as the signed-in user."""

    def __init__(self, settings: Settings, credentials: Credentials, config: RulesConfig,
                 windows: tuple[WindowSpec, ...], tagger: TopicTagger) -> None:
        self.settings = settings
        self.credentials = credentials
        self.config = config
        self.windows = windows
        self.tagger = tagger
        self.env = environment()
        self.base = URL(settings.canonical_url)
        self.closing = asyncio.Event()  # set when the worker stops: live streams end

    def render(self, template: str, principal: Principal | None, **context: Any) -> str:
        zone = principal.timezone if principal else None
        return self.env.get_template(template).render(
            user=principal, zone=zone, when=lambda iso: local_time(iso, zone), **context)

    async def api(self, principal: Principal, method: str, path: str,
                  **kwargs: Any) -> httpx.Response:
        url = str(self.base.with_path(path))
        async with httpx.AsyncClient(timeout=15) as client:
            return await client.request(method, url, headers=self.credentials.forward_headers(
                principal), **kwargs)

    def signed_in(self, request: Any) -> tuple[str, Principal] | None:
        """(session cookie, user) of a signed-in request; None: not signed in, or the
        session expired or was ended by a change of the user's token."""
        session = request.cookies.get(COOKIE)
        principal = self.credentials.from_session(session)
        return (session, principal) if session and principal else None

    def topics(self, text: str | None, language: str | None) -> list[str]:
        return self.tagger.tag(text, language) if text else []

    # -- pages -------------------------------------------------------------------------

    async def inbox(self, principal: Principal) -> list[dict[str, Any]]:
        response = await self.api(principal, "GET", "/api/alerts", params={
            "status": "unresolved", "limit": str(INBOX_LIMIT)})
        if response.status_code != 200:
            raise ConsoleError(response)
        rows: list[dict[str, Any]] = response.json()["alerts"]
        return rows

    def timeline(self, customer: dict[str, Any] | None, alert: dict[str, Any]
                 ) -> list[dict[str, Any]]:
        """Recent interactions and answers of the customer, newest first."""
        source = customer or alert.get("alert", {}).get("context", {})
        items = []
        for record in source.get("recent_interactions", []):
            items.append({"at": record["at"], "kind": "interaction",
                          "title": f"{record['channel']} · {record['touchpoint']}",
                          "detail": record.get("outcome"), "text": record.get("text"),
                          "language": None, "negative": record.get("negative"),
                          "topics": self.topics(record.get("text"), None)})
        for record in source.get("recent_scores", []):
            items.append({"at": record["at"], "kind": "answer",
                          "title": f"{record['survey'].upper()} {record['score']}",
                          "detail": f"{record['channel']} · {record['touchpoint']}",
                          "text": record.get("comment"), "language": record.get("language"),
                          "negative": None,
                          "topics": self.topics(record.get("comment"),
                                                record.get("language"))})
        items.sort(key=lambda item: item["at"], reverse=True)
        return items


class ConsoleError(RuntimeError):
    """The API refused or failed a console request."""

    def __init__(self, response: httpx.Response) -> None:
        try:
            message = str(response.json().get("error"))
        except ValueError:
            message = response.text[:200]
        super().__init__(message)
        self.status = response.status_code


def register_console(app: Any, settings: Settings, credentials: Credentials,
                     config: RulesConfig, windows: tuple[WindowSpec, ...]) -> Console:
    """Add the console's pages to the Faust app."""
    console = Console(settings, credentials, config, windows,
                      load_tagger(settings.lexicons_dir))
    public_url = settings.public_url or settings.canonical_url
    live = LiveInbox(console.inbox, LIVE_EVERY_SECONDS)
    # failed sign-ins per client address, in a moving window kept in this process
    sign_ins = MovingWindowRateLimiter(MemoryStorage())
    sign_in_limit = RateLimitItemPerMinute(settings.sign_in_attempts_per_minute)
    static = {"console.js": "text/javascript", "console.css": "text/css"}
    files = {name: (jinja2.PackageLoader("cxstream.streams.web.console", "static")
                    .get_source(console.env, name)[0]) for name in static}

    def html(text: str, status: int = 200) -> aioweb.Response:
        return aioweb.Response(text=text, status=status, content_type="text/html",
                               headers={"Cache-Control": "no-store",
                                        "Content-Security-Policy":
                                            "default-src 'self'; frame-ancestors 'none'",
                                        "X-Content-Type-Options": "nosniff"})

    def to_login(reason: str | None = None) -> aioweb.Response:
        query = f"?{urlencode({'reason': reason})}" if reason else ""
        return aioweb.HTTPSeeOther(f"/console/login{query}")

    def error_page(principal: Principal | None, exc: ConsoleError) -> aioweb.Response:
        return html(console.render("error.html", principal, message=str(exc),
                                   status=exc.status), exc.status)

    def signed_page(fun: Any) -> Any:
        """A page for signed-in users: ``fun(request, session, principal, **match)``; anyone
        else is sent to the login page."""

        @functools.wraps(fun)
        async def page(view: Any, request: Any, **match: str) -> Any:
            signed = console.signed_in(request)
            if signed is None:
                return to_login()
            return await fun(request, *signed, **match)

        return page

    async def checked_form(request: Any, session: str) -> dict[str, str] | None:
        form = dict(await request.post())
        if not hmac.compare_digest(str(form.get("form_token", "")), form_token(session)):
            return None
        return {k: str(v) for k, v in form.items()}

    @app.page("/console/static/{name}")
    async def serve_static(self: Any, request: Any, name: str) -> Any:
        if name not in static:
            return aioweb.Response(status=404, text="not found")
        return aioweb.Response(text=files[name], content_type=static[name],
                               headers={"Cache-Control": "max-age=300"})

    class Login(faust.web.View):  # type: ignore[misc]
        async def get(self, request: Any) -> Any:
            return html(console.render("login.html", None,
                                       reason=request.query.get("reason")))

        async def post(self, request: Any) -> Any:
            client = request.remote or "unknown"
            if not sign_ins.test(sign_in_limit, client):
                return html(console.render("login.html", None,
                                           reason="Too many failed sign-ins from here. "
                                                  "Wait a minute and try again."), 429)
            form = await request.post()
            session = credentials.session_for(str(form.get("token", "")).strip())
            if session is None:
                sign_ins.hit(sign_in_limit, client)
                return html(console.render("login.html", None,
                                           reason="That token is not known. Check it "
                                                  "and try again."), 401)
            response = aioweb.HTTPSeeOther("/console")
            response.set_cookie(COOKIE, session[0], httponly=True, samesite="Strict",
                                path="/", secure=public_url.startswith("https://"),
                                max_age=int(settings.console_session_hours * 3_600))
            return response

    app.page("/console/login")(Login)

    class Logout(faust.web.View):  # type: ignore[misc]
        async def post(self, request: Any) -> Any:
            response = to_login("You are signed out.")
            response.del_cookie(COOKIE, path="/")
            return response

    app.page("/console/logout")(Logout)

    @app.page("/console")
    @signed_page
    async def show_inbox(request: Any, session: str, principal: Principal) -> Any:
        try:
            rows = await console.inbox(principal)
        except ConsoleError as exc:
            return error_page(principal, exc)
        return html(console.render("inbox.html", principal, rows=rows))

    async def stop_live_streams(sender: Any, **kwargs: Any) -> None:
        console.closing.set()
        await live.shut()

    app.on_before_shutdown.connect(stop_live_streams)

    @app.page("/console/events")
    async def stream_inbox(self: Any, request: Any) -> Any:
        """Server-sent events: ``ready`` (the ids in the inbox now: the page drops other
        rows), then ``alert`` / ``changed`` with a row's HTML for each alert new or changed
        since ``since`` (the page's newest change), ``gone`` for one resolved, and ``bye``
        when the stream ends (the page opens a new one)."""
        signed = console.signed_in(request)
        if signed is None:
            return aioweb.Response(status=401, text="sign in first")
        _, principal = signed
        if not live.open(principal):
            return aioweb.Response(status=429, text=(
                f"at most {live.max_per_user} live pages per user: close one"))
        try:
            return await stream_rows(request, principal)
        finally:
            live.close(principal)

    async def stream_rows(request: Any, principal: Principal) -> Any:
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
                    version, rows = await live.wait(principal, version,
                                                    LIVE_EVERY_SECONDS * 2)
                    if rows is not None:
                        if seen is None:  # what the page may have missed before
                            await stream.send(" ".join(r["alert_id"] for r in rows),
                                              event="ready")
                            seen = {r["alert_id"]: since for r in rows}
                        for row in rows:
                            if later(row["updated_at"], seen.get(row["alert_id"])):
                                kind = "changed" if row["alert_id"] in seen else "alert"
                                await stream.send(row_html(row), event=kind,
                                                  id=row["alert_id"])
                        current = {r["alert_id"]: r["updated_at"] for r in rows}
                        for gone in set(seen) - set(current):
                            await stream.send(gone, event="gone")
                        seen = current
                await stream.send("", event="bye")
            except ConnectionError:  # the page was closed meanwhile
                pass
        return stream

    @app.page("/console/alerts/{alert_id}")
    @signed_page
    async def show_alert(request: Any, session: str, principal: Principal,
                         alert_id: str) -> Any:
        response = await console.api(principal, "GET", f"/api/alerts/{quote(alert_id)}")
        if response.status_code != 200:
            return error_page(principal, ConsoleError(response))
        data = response.json()
        alert = data["alert"]
        earlier: list[dict[str, Any]] = []
        if alert.get("customer_id"):
            found = await console.api(principal, "GET", "/api/alerts", params={
                "customer_id": alert["customer_id"], "limit": "50"})
            if found.status_code == 200:
                earlier = [row for row in found.json()["alerts"]
                           if row["alert_id"] != alert_id]
                earlier.sort(key=lambda row: row["created_at"], reverse=True)
        return html(console.render(
            "alert.html", principal, alert=alert, history=data["history"],
            customer=data["customer"], earlier=earlier,
            timeline=console.timeline(data["customer"], data),
            categories=config.lifecycle.resolution_categories, form_token=form_token(session),
            done=request.query.get("done"), failed=request.query.get("error")))

    @signed_page
    async def act_on_alert(request: Any, session: str, principal: Principal, alert_id: str,
                           action: str) -> Any:
        form = await checked_form(request, session)
        if form is None:
            return html(console.render("error.html", principal, status=403,
                                       message="This form has expired. Go back, "
                                               "reload the page and try again."), 403)
        body: dict[str, Any] = {k: v for k, v in form.items()
                                if k in {"to", "text", "category", "note"} and v}
        page = f"/console/alerts/{quote(alert_id)}"
        if action == "snooze":
            try:
                body["until"] = snooze_until(form)
            except ValueError as exc:  # the API names the field the same way
                return aioweb.HTTPSeeOther(f"{page}?{urlencode({'error': str(exc)})}")
        response = await console.api(principal, "POST",
                                     f"/api/alerts/{quote(alert_id)}/{action}",
                                     json=body)
        if response.status_code == 200:
            return aioweb.HTTPSeeOther(f"{page}?{urlencode({'done': action})}")
        message = ConsoleError(response)
        return aioweb.HTTPSeeOther(f"{page}?{urlencode({'error': str(message)})}")

    class AlertAction(faust.web.View):  # type: ignore[misc]
        async def post(self, request: Any, alert_id: str, action: str) -> Any:
            return await act_on_alert(self, request, alert_id=alert_id, action=action)

    app.page("/console/alerts/{alert_id}/{action}")(AlertAction)

    @app.page("/console/scores")
    @signed_page
    async def show_scores(request: Any, session: str, principal: Principal) -> Any:
        names = [spec.name for spec in windows]
        window = request.query.get("window", "day" if "day" in names else names[0])
        metric = request.query.get("metric", "nps")
        if window not in names or metric not in {"nps", "csat", "ces"}:
            return html(console.render("error.html", principal, status=400,
                                       message="Pick a window and a metric from the "
                                               "lists."), 400)
        tables = []
        # the scores of agents are about people: for leads and admins (streams.web.api)
        shown = ("segment", "channel", "touchpoint", "stage") + (
            ("agent",) if principal.sees_all else ())
        for dimension in shown:
            both = {}
            for which in ("current", "previous"):
                response = await console.api(
                    principal, "GET", f"/api/scores/{dimension}",
                    params={"window": window, "metric": metric, "which": which})
                if response.status_code != 200:
                    return error_page(principal, ConsoleError(response))
                both[which] = response.json()
            previous = {row["key"]: row for row in both["previous"]["groups"]}
            tables.append({"dimension": dimension, "start": both["current"]["start"],
                           "rows": [{**row, "previous": previous.get(row["key"])}
                                    for row in both["current"]["groups"]],
                           "hidden": both["current"].get("hidden")})
        return html(console.render("scores.html", principal, tables=tables, window=window,
                                   metric=metric, windows=names))

    @app.page("/console/priorities")
    @signed_page
    async def show_priorities(request: Any, session: str, principal: Principal) -> Any:
        rank_by = request.query.get("rank_by", config.priorities.rank_by)
        by = request.query.get("by", "issue")
        if rank_by not in {"value", "customers", "mix"} or by not in {"issue", "area"}:
            return html(console.render("error.html", principal, status=400,
                                       message="Pick a ranking from the list."), 400)
        response = await console.api(principal, "GET", "/api/priorities",
                                     params={"rank_by": rank_by, "by": by, "limit": "50"})
        if response.status_code == 404:
            return html(console.render("error.html", principal, status=404,
                                       message="Priorities are switched off in the rules "
                                               "file (priorities.enabled)."), 404)
        if response.status_code != 200:
            return error_page(principal, ConsoleError(response))
        return html(console.render("priorities.html", principal, ranked=response.json(),
                                   rank_by=rank_by, by=by))

    return console


def later(iso: str, than: str | None) -> bool:
    """``iso`` is after ``than`` (an ISO time; empty or None: the beginning of time)."""
    if not than:
        return True
    try:
        return datetime.fromisoformat(iso) > datetime.fromisoformat(than)
    except ValueError:
        return True


#: the most hours the snooze form takes (the rules' own limit is checked by the API)
SNOOZE_FORM_MAX_HOURS = 24 * 366


def snooze_until(form: dict[str, str]) -> str:
    """The form's "snooze for N hours" as a time, or its explicit time; ValueError names
    the field when the hours are not a number from 0 to a year (inf, nan, 1e12)."""
    if form.get("until"):
        return form["until"]
    raw = form.get("hours", "") or "0"
    try:
        hours = float(raw)
    except ValueError:
        hours = math.nan
    if not 0 <= hours <= SNOOZE_FORM_MAX_HOURS:  # also false for nan
        raise ValueError(f"hours: a number of hours from 0 to {SNOOZE_FORM_MAX_HOURS}, "
                         f"not {raw[:40]!r}")
    moment = datetime.now(UTC) + timedelta(hours=hours)
    return moment.isoformat()
