"""How the console's pages are made: the templates' environment and filters, times in
the user's zone, the forms' anti-forgery value and the snooze form's time. No I/O."""

from __future__ import annotations

import hashlib
import hmac
import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from cxstream.alerts.comment_tags import TopicTagger
from cxstream.alerts.lifecycle import due_text
from cxstream.streams.web.console.charts import driver_bars, trend_chart

__all__ = ["due_text", "environment", "form_token", "label", "later", "local_time", "money",
           "snooze_until", "timeline", "value_text"]
#: the most hours the snooze form takes (the rules' own limit is checked by the API)
SNOOZE_FORM_MAX_HOURS = 24 * 366


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cxstream.streams.web.console", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["due"] = due_text
    env.filters["label"] = label
    env.filters["money"] = money
    env.filters["value_text"] = value_text
    env.globals["trend_chart"] = trend_chart
    env.globals["driver_bars"] = driver_bars
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


def later(iso: str, than: str | None) -> bool:
    """``iso`` is after ``than`` (an ISO time; empty or None: the beginning of time)."""
    if not than:
        return True
    try:
        return datetime.fromisoformat(iso) > datetime.fromisoformat(than)
    except ValueError:
        return True


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


def timeline(tagger: TopicTagger, customer: dict[str, Any] | None, alert: dict[str, Any]
             ) -> list[dict[str, Any]]:
    """Recent interactions and answers of the customer, newest first (from the alert's
    context when the customer's state is not at hand)."""
    def topics(text: str | None, language: str | None) -> list[str]:
        return tagger.tag(text, language) if text else []

    source = customer or alert.get("alert", {}).get("context", {})
    items = []
    for record in source.get("recent_interactions", []):
        items.append({"at": record["at"], "kind": "interaction",
                      "title": f"{record['channel']} · {record['touchpoint']}",
                      "detail": record.get("outcome"), "text": record.get("text"),
                      "language": None, "negative": record.get("negative"),
                      "topics": topics(record.get("text"), None)})
    for record in source.get("recent_scores", []):
        items.append({"at": record["at"], "kind": "answer",
                      "title": f"{record['survey'].upper()} {record['score']}",
                      "detail": f"{record['channel']} · {record['touchpoint']}",
                      "text": record.get("comment"), "language": record.get("language"),
                      "negative": None,
                      "topics": topics(record.get("comment"), record.get("language"))})
    items.sort(key=lambda item: item["at"], reverse=True)
    return items
