"""Slack messages an agent can act on: Block Kit bodies for raised alerts, follow-ups
(escalated, resolved) and digests.

The blocks are built through strict models of the few Block Kit blocks used, with the
limits Slack documents (header text 150 characters, section text 3,000, at most 10
fields of 2,000, button text 75, URLs 3,000, 50 blocks per message): a body that would
be refused by Slack fails here, in a test, instead.

All text that comes from producers or users (comments, touchpoints, names, notes) goes
through ``escape``: Slack reads ``<...>`` as a link or a mention (``<!channel>`` pings a
whole channel) and ``&`` as an entity, and these are its only control characters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from cxstream.schemas.outputs import Alert

SEVERITY_ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:",
                 "info": ":large_blue_circle:"}
_Url = Annotated[str, StringConstraints(max_length=3_000, pattern=r"^https?://\S+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlainText(_Strict):
    type: Literal["plain_text"] = "plain_text"
    text: str = Field(min_length=1)
    emoji: bool = True


class Mrkdwn(_Strict):
    type: Literal["mrkdwn"] = "mrkdwn"
    text: str = Field(min_length=1, max_length=3_000)


class HeaderBlock(_Strict):
    type: Literal["header"] = "header"
    text: Annotated[PlainText, Field()]

    def model_post_init(self, context: Any) -> None:
        if len(self.text.text) > 150:
            raise ValueError("a header's text has at most 150 characters")


class SectionBlock(_Strict):
    type: Literal["section"] = "section"
    text: Mrkdwn | None = None
    fields: list[Mrkdwn] | None = Field(default=None, min_length=1, max_length=10)

    def model_post_init(self, context: Any) -> None:
        if self.text is None and not self.fields:
            raise ValueError("a section needs text or fields")
        if any(len(f.text) > 2_000 for f in self.fields or []):
            raise ValueError("a section field has at most 2,000 characters")


class ContextBlock(_Strict):
    type: Literal["context"] = "context"
    elements: list[Mrkdwn] = Field(min_length=1, max_length=10)


class DividerBlock(_Strict):
    type: Literal["divider"] = "divider"


class ButtonElement(_Strict):
    type: Literal["button"] = "button"
    text: PlainText
    url: _Url
    action_id: str = Field(min_length=1, max_length=255)
    style: Literal["primary", "danger"] | None = None

    def model_post_init(self, context: Any) -> None:
        if len(self.text.text) > 75:
            raise ValueError("a button's text has at most 75 characters")


class ActionsBlock(_Strict):
    type: Literal["actions"] = "actions"
    elements: list[ButtonElement] = Field(min_length=1, max_length=25)


Block = HeaderBlock | SectionBlock | ContextBlock | DividerBlock | ActionsBlock


class Message(_Strict):
    """An incoming-webhook message: ``text`` is the notification's fallback."""

    text: str = Field(min_length=1, max_length=40_000)
    blocks: list[Block] = Field(min_length=1, max_length=50)


def escape(text: Any) -> str:
    """Producer text made inert for Slack's mrkdwn (links, mentions, entities)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + "…"


def slack_time(moment: datetime | None) -> str:
    """A time Slack shows in each reader's own time zone (UTC as the fallback)."""
    if moment is None:
        return "—"
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def mention(who: str, users: dict[str, str]) -> str:
    """``<@U123>`` (or ``<!subteam^S123>`` for a group id) when the owner is mapped."""
    slack_id = users.get(who)
    if slack_id is None:
        return escape(who)
    return f"<!subteam^{slack_id}>" if slack_id.startswith("S") else f"<@{slack_id}>"


def _subject(alert: Alert) -> str:
    return escape(alert.customer_id or (f"segment {alert.segment}" if alert.segment
                                        else alert.reason.get("key") or alert.rule))


def _signals(alert: Alert, shown: int) -> list[str]:
    lines = []
    for record in alert.context.get("recent_interactions", [])[-shown:] if shown else []:
        what = " · ".join(escape(record.get(k)) for k in ("channel", "touchpoint", "outcome")
                          if record.get(k))
        lines.append(f"• {what}")
    for example in alert.context.get("examples", [])[-shown:] if shown else []:
        lines.append(f"• {escape(example.get('customer_id'))}: {escape(example.get('detail'))}")
    return lines


def _predicted(prediction: Any) -> str | None:
    """"*Predicted detractor* 0.71, because 3 failed interactions in 7 days" (None: no
    prediction in the context)."""
    if not isinstance(prediction, dict) or prediction.get("probability") is None:
        return None
    reasons = [escape(r.get("text", "")) for r in prediction.get("reasons") or []]
    return (f"*Predicted detractor* {prediction['probability']:.2f}"
            + (f", because {'; '.join(reasons)}" if reasons else ""))


def alert_message(alert: Alert, console_url: str | None, users: dict[str, str],
                  comment_max: int = 300, signals_shown: int = 3) -> Message:
    """The message of a raised alert."""
    context = alert.context
    header = truncate(f"{alert.severity.upper()}: {alert.rule.replace('_', ' ')} - "
                      f"{alert.customer_id or alert.segment or alert.reason.get('key') or ''}",
                      150)
    value = context.get("customer_value")
    band = "high value" if context.get("high_value") else (
        "standard value" if context.get("high_value") is False else "—")
    fields = [
        Mrkdwn(text=f"*Customer*\n{_subject(alert)}"),
        Mrkdwn(text=f"*Segment*\n{escape(alert.segment or context.get('segment') or '—')}"),
        Mrkdwn(text=f"*Value band*\n{band}"
               + (f" ({escape(f'{value:,.0f}')})" if isinstance(value, int | float) else "")),
        Mrkdwn(text=f"*Owner*\n{mention(alert.owner, users)}"),
        Mrkdwn(text=f"*Due*\n{slack_time(alert.act_by)}"),
        Mrkdwn(text=f"*Quadrant*\n{escape(context.get('quadrant') or '—')}"),
    ]
    blocks: list[Block] = [
        HeaderBlock(text=PlainText(text=header)),
        SectionBlock(text=Mrkdwn(text=truncate(
            f"{SEVERITY_ICON[alert.severity]} {escape(alert.summary)}", 3_000))),
        SectionBlock(fields=fields),
    ]
    comment = context.get("comment")
    if comment:
        quoted = "\n".join(f"> {line}" for line in
                           escape(truncate(str(comment), comment_max)).splitlines() or [""])
        language = context.get("comment_language")
        topics = context.get("topics") or []
        tail = " · ".join(part for part in (
            f"language {escape(language)}" if language else "",
            f"topics {escape(', '.join(topics))}" if topics else "") if part)
        blocks.append(SectionBlock(text=Mrkdwn(text=truncate(
            quoted + (f"\n_{tail}_" if tail else ""), 3_000))))
    predicted = _predicted(context.get("prediction"))
    if predicted:
        blocks.append(SectionBlock(text=Mrkdwn(text=truncate(predicted, 3_000))))
    signals = _signals(alert, signals_shown)
    if signals:
        blocks.append(ContextBlock(elements=[Mrkdwn(text=truncate(
            "*Last signals*\n" + "\n".join(signals), 3_000))]))
    blocks.append(ContextBlock(elements=[Mrkdwn(text=f"alert `{escape(alert.alert_id)}`")]))
    if console_url:
        blocks.append(ActionsBlock(elements=[ButtonElement(
            text=PlainText(text="Open in the console"), action_id="open_alert",
            url=f"{console_url.rstrip('/')}/console/alerts/{alert.alert_id}",
            style="primary")]))
    return Message(text=truncate(f"[{alert.severity}] {alert.summary}", 3_000), blocks=blocks)


def follow_up_message(alert: Alert, console_url: str | None, users: dict[str, str]
                      ) -> Message:
    """An escalation or a resolution, naming the alert it follows."""
    if alert.notice == "escalated":
        title = f"Escalated (x{alert.escalations}) to {alert.severity}"
        body = (f":rotating_light: *{escape(alert.rule)}* for {_subject(alert)} is now with "
                f"{mention(alert.owner, users)}: {escape(alert.notice_reason or '')}\n"
                f"Due {slack_time(alert.act_by)}")
    else:
        title = "Resolved"
        how = "by itself" if alert.resolution == "auto" else f"as {escape(alert.resolution)}"
        body = (f":white_check_mark: *{escape(alert.rule)}* for {_subject(alert)} was "
                f"resolved {how}" + (f": {escape(alert.notice_reason)}"
                                     if alert.notice_reason else ""))
    blocks: list[Block] = [
        HeaderBlock(text=PlainText(text=truncate(f"{title}: {alert.rule.replace('_', ' ')}",
                                                 150))),
        SectionBlock(text=Mrkdwn(text=truncate(body, 3_000))),
        ContextBlock(elements=[Mrkdwn(text=f"follows alert `{escape(alert.alert_id)}` · "
                                           f"{escape(alert.summary)[:500]}")]),
    ]
    if console_url:
        blocks.append(ActionsBlock(elements=[ButtonElement(
            text=PlainText(text="Open in the console"), action_id="open_alert",
            url=f"{console_url.rstrip('/')}/console/alerts/{alert.alert_id}")]))
    return Message(text=truncate(f"[{alert.notice}] {alert.summary}", 3_000), blocks=blocks)


def digest_message(alerts: list[Alert], console_url: str | None, recipient: str) -> Message:
    """The held alerts of one recipient, as one message with links."""
    lines = []
    for alert in alerts:
        link = (f"<{console_url.rstrip('/')}/console/alerts/{alert.alert_id}|open>"
                if console_url else f"`{escape(alert.alert_id)}`")
        lines.append(f"{SEVERITY_ICON[alert.severity]} {escape(truncate(alert.summary, 150))}"
                     f" · due {slack_time(alert.act_by)} · {link}")
    blocks: list[Block] = [HeaderBlock(text=PlainText(text=truncate(
        f"{len(alerts)} more alerts for {recipient}", 150)))]
    chunk: list[str] = []
    for line in lines:  # sections of at most 3,000 characters, at most 45 of them
        if sum(len(x) + 1 for x in chunk) + len(line) > 2_900:
            blocks.append(SectionBlock(text=Mrkdwn(text="\n".join(chunk))))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(SectionBlock(text=Mrkdwn(text="\n".join(chunk))))
    if len(blocks) > 49:
        blocks = [*blocks[:48], ContextBlock(elements=[Mrkdwn(text="… more in the console")])]
    return Message(text=f"{len(alerts)} more alerts for {recipient}", blocks=blocks)
