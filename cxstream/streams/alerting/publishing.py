"""Publishing alerts: ``cx.alerts`` (the record of truth, with CloudEvents headers) and
the alert events topic the cases are kept from; the emitter that sends what a batch's
reactions produced and waits for Kafka's acknowledgements."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any

from cxstream.alerts.reactions import AlertOut, ResolveOut, SignalOut
from cxstream.alerts.receivers import log_line
from cxstream.schemas.export import CONTRACT_VERSION
from cxstream.schemas.outputs import Alert
from cxstream.streams.alerting.cases import AlertEvent, subject_key
from cxstream.streams.customers.survey_desk import SurveyOut
from cxstream.streams.groups.segment_drops import ShareOut
from cxstream.streams.metrics import WorkerMetrics

log = logging.getLogger(__name__)


#: header of every alert record: its rule, so a reader looking for one rule parses only
#: those records
RULE_HEADER = "cx.rule"
#: header of every output record: the contract version its value follows
VERSION_HEADER = "cx.contract.version"
#: the CloudEvents source of this deployment's alerts (a URI reference)
EVENT_SOURCE = "/cxstream"


def alert_headers(alert: Alert, source: str = EVENT_SOURCE) -> dict[str, bytes]:
    """Kafka headers of an alert record: its rule, the contract version, and the
    CloudEvents attributes in binary mode (Kafka protocol binding: ``ce_`` headers and
    ``content-type``), so that CloudEvents tooling reads cx.alerts as it is. An update
    (a later trigger folded in: ``occurrences``), an escalation or a resolution is
    another event of the same alert: its id says which, and a record sent again after a
    crash keeps its id (a consumer drops it as a duplicate)."""
    if alert.notice is None and alert.occurrences == 1:
        event_id, kind, at = alert.alert_id, "raised", alert.created_at
    elif alert.notice is None:
        event_id, kind = f"{alert.alert_id}:{alert.occurrences}", "updated"
        at = alert.created_at
    else:
        event_id = f"{alert.alert_id}:{alert.notice}:{alert.escalations}"
        kind, at = alert.notice, alert.notice_at or alert.created_at
    subject = alert.customer_id or alert.segment or alert.alert_id
    return {RULE_HEADER: alert.rule.encode(), VERSION_HEADER: CONTRACT_VERSION.encode(),
            "ce_specversion": b"1.0", "ce_id": event_id.encode(),
            "ce_type": f"cxstream.alert.{kind}.v{CONTRACT_VERSION}".encode(),
            "ce_source": source.encode(), "ce_time": at.isoformat().encode(),
            "ce_subject": subject.encode(), "content-type": b"application/json"}


class AlertPublisher:
    """Where alert messages go: ``cx.alerts`` (keyed by subject, the record of truth for
    consumers) and the alert events topic (keyed by alert id: the cases are kept from it).
    Each method returns what to await for Kafka's acknowledgement."""

    def __init__(self, alerts_topic: Any, events_topic: Any,
                 source: str = EVENT_SOURCE) -> None:
        self.alerts_topic = alerts_topic
        self.events_topic = events_topic
        self.source = source  # CloudEvents source

    async def alert(self, alert: Alert) -> Any:
        first = await publish_alert(self.alerts_topic, alert, self.source)
        second = await self.events_topic.send(
            key=alert.alert_id.encode(),
            value=AlertEvent(alert=alert).model_dump_json(exclude_none=True).encode())
        return asyncio.gather(first, second)

    async def follow_up(self, alert: Alert) -> Any:
        """An escalation or a resolution, for the sinks (cx.alerts only)."""
        log.info("ALERT %s %s", (alert.notice or "").upper(), log_line(alert))
        return await self.alerts_topic.send(key=subject_key(alert),
                                            value=alert.model_dump_json().encode(),
                                            headers=alert_headers(alert, self.source))

    async def resolution(self, alert_id: str, reason: str, at: datetime) -> Any:
        event = AlertEvent(resolve=alert_id, reason=reason, at=at)
        return await self.events_topic.send(
            key=alert_id.encode(), value=event.model_dump_json(exclude_none=True).encode())


class AlertEmitter:
    """Publishes what the fold's reactions produced."""

    def __init__(self, publisher: AlertPublisher, signals_topic: Any,
                 metrics: WorkerMetrics, shares_topic: Any = None,
                 surveys_topic: Any = None) -> None:
        self.publisher = publisher
        self.shares_topic = shares_topic
        self.surveys_topic = surveys_topic  # cx.survey-requests
        self.signals_topic = signals_topic
        self.metrics = metrics

    async def emit(self, outputs: list[Any]) -> None:
        """Send every output, then wait until Kafka acknowledged them all (the batch's
        state and offsets must not be written before); safe to call again after a
        failure: alert ids and signals are idempotent downstream."""
        acks = []
        for output in outputs:
            if isinstance(output, AlertOut):
                acks.append(await self.publisher.alert(output.alert))
            elif isinstance(output, ResolveOut):
                resolution = output.resolution
                acks.append(await self.publisher.resolution(
                    resolution.alert_id, resolution.reason, resolution.at))
            elif isinstance(output, SignalOut):
                signal = output.signal
                acks.append(await self.signals_topic.send(
                    key=signal.group.encode(), value=signal.model_dump_json().encode()))
            elif isinstance(output, ShareOut) and self.shares_topic is not None:
                acks.append(await self.shares_topic.send(key=output.topic_key,
                                                         value=output.encode()))
            elif isinstance(output, SurveyOut) and self.surveys_topic is not None:
                acks.append(await self.surveys_topic.send(
                    key=output.key, value=output.encode(),
                    headers={VERSION_HEADER: CONTRACT_VERSION.encode()}))
        await asyncio.gather(*acks)
        for output in outputs:
            if isinstance(output, AlertOut):
                self._count(output)
                if output.source_time is not None:
                    self.metrics.alert_latency.observe(max(time.time() - output.source_time,
                                                           0.0))
            elif isinstance(output, SignalOut):
                self.metrics.signals_emitted.labels(output.signal.kind).inc()

    def _count(self, output: AlertOut) -> None:
        alert = output.alert
        if output.status == "new":
            self.metrics.alerts_raised.labels(alert.rule, alert.severity).inc()
        else:
            self.metrics.alerts_folded.labels(alert.rule).inc()


async def publish_alert(alerts_topic: Any, alert: Alert, source: str = EVENT_SOURCE) -> Any:
    """Publish to cx.alerts; the log sink writes the first occurrence as one line.
    Returns what to await for Kafka's acknowledgement."""
    ack = await alerts_topic.send(key=subject_key(alert),
                                  value=alert.model_dump_json().encode(),
                                  headers=alert_headers(alert, source))
    if alert.occurrences == 1:
        log.info("ALERT %s", log_line(alert))
    return ack
