"""Metrics read at scrape time: consumer lag, table sizes, and answer counts per group.

Answer counts are this worker's share (the partitions it owns) of the current window, as
counters Prometheus can add across workers; PromQL then computes NPS and CSAT, e.g.
100 * (sum by (key) (cxstream_group_answers{dimension="segment",window="day",
answer="promoters"}) - sum by (key) (...answer="detractors"...)) / sum by (key)
(cxstream_group_answers{dimension="segment",window="day",survey="nps"}).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cxstream.scoring.groups import DIMENSIONS
from cxstream.scoring.partials_index import PartialsIndex
from cxstream.scoring.reports import Tallies, merge_rows
from cxstream.scoring.windows import WindowSpec, window_start
from cxstream.streams.alerting.case_index import IndexNotReady
from cxstream.streams.kafka.faust_compat.access import table_size

#: label values per dimension when no cap is given (the worker passes max_group_keys,
#: the cap of group keys itself, plus one for "(other)")
MAX_KEYS_PER_DIMENSION = 1_000
_ANSWERS = {
    "nps": ("promoters", "passives", "detractors"),
    "csat": ("csat_satisfied",),
    "ces": ("ces_easy", "ces_hard"),
}


class WorkerCollector(Collector):
    """Gauges computed from Faust's monitor and the worker's tables when scraped."""

    def __init__(self, app: Any, tables: dict[str, Any], partials: PartialsIndex,
                 owned: Callable[[], set[int]], windows: tuple[WindowSpec, ...],
                 quadrants: Callable[[], dict[tuple[str, str], int]] = dict,
                 group_detail: bool = False,
                 max_keys: int = MAX_KEYS_PER_DIMENSION,
                 last_read: Callable[[], dict[tuple[str, int], float]] = dict,
                 clock: Callable[[], float] = time.time) -> None:
        #: (topic, partition) -> record time of the last message read (streams.ingest.batches)
        self.last_read = last_read
        self.clock = clock
        self.group_detail = group_detail
        self.max_keys = max_keys
        self.app = app
        self.quadrants = quadrants
        self.tables = tables
        self.partials = partials
        self.owned = owned
        self.windows = windows

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._lag()
        sizes = GaugeMetricFamily("cxstream_table_keys", "Keys in each table of this worker.",
                                  labels=["table"])
        for name, table in self.tables.items():
            sizes.add_metric([name], table_size(table))
        yield sizes
        if self.group_detail:  # per-group data only when the operator asks for it
            yield from self._answers()
        yield self._quadrants()

    def _quadrants(self) -> GaugeMetricFamily:
        customers = GaugeMetricFamily(
            "cxstream_customers",
            "Customers with a profile on this worker's partitions, by segment and quadrant "
            "(unknown: value band or experience not known yet); sum across workers.",
            labels=["segment", "quadrant"])
        segments: set[str] = set()
        if not self.group_detail:  # one total per quadrant, no segment names
            totals: dict[str, int] = {}
            for (_, quadrant), count in self.quadrants().items():
                totals[quadrant] = totals.get(quadrant, 0) + count
            for quadrant, count in sorted(totals.items()):
                customers.add_metric(["all", quadrant], count)
            return customers
        for (segment, quadrant), count in sorted(self.quadrants().items()):
            segments.add(segment)
            if len(segments) <= self.max_keys + 1:  # bounded label values
                customers.add_metric([segment, quadrant], count)
        return customers

    def _lag(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily("cxstream_consumer_lag_messages",
                                "Messages not yet read, per input topic and partition.",
                                labels=["topic", "partition"])
        seconds = GaugeMetricFamily(
            "cxstream_consumer_lag_seconds",
            "Per input topic, how long ago the last record read was written, largest "
            "over the partitions with messages not yet read (0 when caught up): the "
            "newest record is at most that much ahead of what the worker has read.",
            labels=["topic"])
        monitor = self.app.monitor
        last_read = self.last_read()
        now = self.clock()
        behind_by: dict[str, float] = {}
        for tp, end in dict(monitor.tp_end_offsets).items():
            read = monitor.tp_read_offsets.get(tp)
            behind = max(end - (read + 1) if read is not None else end, 0)
            lag.add_metric([tp.topic, str(tp.partition)], behind)
            age = 0.0
            if behind:
                written = last_read.get((tp.topic, tp.partition))
                age = max(0.0, now - written) if written is not None else 0.0
            behind_by[tp.topic] = max(behind_by.get(tp.topic, 0.0), age)
        for topic, age in sorted(behind_by.items()):
            seconds.add_metric([topic], age)
        yield lag
        yield seconds

    def _answers(self) -> Iterator[GaugeMetricFamily]:
        answers = GaugeMetricFamily(
            "cxstream_group_answers",
            "Answers in the current window, this worker's share, by group and answer class.",
            labels=["dimension", "key", "window", "survey", "answer"])
        current = {spec.name: window_start(time.time(), spec.seconds) for spec in self.windows}
        totals: dict[str, Tallies] = {}  # dimension -> (window, start, key) -> tally
        rows: dict[str, list[tuple[str, int, str, Any]]] = {}
        slices = set(current.items())
        for dimension in DIMENSIONS:
            found = self.partials.rows(dimension, slices, None, self.owned())
            if found:
                rows[dimension] = [(window, start, key, tally)
                                   for window, start, key, tally in found]
        for dimension, dimension_rows in rows.items():
            totals[dimension] = merge_rows(dimension_rows)
        per_dimension: dict[str, int] = {}
        for dimension, key, window, tally in sorted(
                (dimension, key, window, tally) for dimension, merged in totals.items()
                for (window, _, key), tally in merged.items()):
            per_dimension[dimension] = per_dimension.get(dimension, 0) + 1
            if per_dimension[dimension] > (self.max_keys + 1) * len(self.windows):
                continue  # bounded label values
            counts = tally.model_dump()
            for survey, classes in _ANSWERS.items():
                total = tally.nps_n if survey == "nps" else counts[f"{survey}_n"]
                answers.add_metric([dimension, key, window, survey, "all"], total)
                for answer in classes:
                    answers.add_metric([dimension, key, window, survey,
                                        answer.removeprefix(f"{survey}_")], counts[answer])
        yield answers


class OpenAlertsCollector(Collector):
    """``cxstream_alerts_open``: this worker's unresolved alerts (the lifecycle partitions
    it owns) by severity, status and age band, and those past their deadline; Prometheus
    adds them up across workers."""

    def __init__(self, counts: Callable[[Any], tuple[dict[tuple[str, str, str], int],
                                                     dict[str, int]]],
                 now: Callable[[], Any]) -> None:
        #: at a time: the unresolved cases by (severity, status, age band) and the overdue
        #: ones by severity (streams.alerting.case_index.CaseIndex.counts: no case is visited)
        self.counts = counts
        self.now = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from cxstream.alerts.lifecycle import AGE_BANDS

        try:
            counts, overdue = self.counts(self.now())
        except IndexNotReady:  # read again after a recovery: no figure rather than a wrong one
            return
        family = GaugeMetricFamily(
            "cxstream_alerts_open", "Unresolved alerts of the lifecycle partitions this "
            "worker owns, by severity, status and age band (lt_1h, 1h_4h, 4h_24h, gt_24h).",
            labels=["severity", "status", "age_band"])
        for severity in ("critical", "warning", "info"):
            for status in ("open", "acknowledged", "snoozed"):
                for band in AGE_BANDS:
                    family.add_metric([severity, status, band],
                                      counts.get((severity, status, band), 0))
        yield family
        late = GaugeMetricFamily(
            "cxstream_alerts_overdue", "Unresolved alerts past their deadline (act_by, or "
            "resolve_by once acknowledged), by severity.", labels=["severity"])
        for severity in ("critical", "warning", "info"):
            late.add_metric([severity], overdue.get(severity, 0))
        yield late
