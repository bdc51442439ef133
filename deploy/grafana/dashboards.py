"""Writes deploy/grafana/dashboards/*.json: the operations and CX dashboards.

python deploy/grafana/dashboards.py   (tests/unit/test_deploy.py checks the files
are what this writes). Kept as code so that both dashboards share the variables, the
datasource reference and the panel layout rules: a datasource variable, $__rate_interval
for every rate, and worker and segment variables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
W = 'instance=~"$worker"'
SEG = 'dimension="segment",key=~"$segment",window="$window"'


def variables(segment: bool) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        {"name": "datasource", "label": "Data source", "type": "datasource",
         "query": "prometheus", "current": {}, "hide": 0},
        {"name": "worker", "label": "Worker", "type": "query", "datasource": DATASOURCE,
         "query": {"query": 'label_values(up{job="cxstream"}, instance)',
                   "refId": "worker"},
         "definition": 'label_values(up{job="cxstream"}, instance)',
         "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2,
         "current": {"text": "All", "value": "$__all"}},
    ]
    if segment:
        found += [
            {"name": "window", "label": "Window", "type": "custom",
             "query": "hour,day", "current": {"text": "day", "value": "day"},
             "options": [{"text": "hour", "value": "hour", "selected": False},
                         {"text": "day", "value": "day", "selected": True}]},
            {"name": "segment", "label": "Segment", "type": "query",
             "datasource": DATASOURCE,
             "query": {"query": 'label_values(cxstream_group_answers{dimension="segment"}, key)',
                       "refId": "segment"},
             "definition": 'label_values(cxstream_group_answers{dimension="segment"}, key)',
             "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2,
             "current": {"text": "All", "value": "$__all"}}]
    return {"list": found}


def panel(number: int, title: str, targets: list[tuple[str, str]], unit: str = "short",
          description: str = "", kind: str = "timeseries") -> dict[str, Any]:
    return {
        "id": number, "type": kind, "title": title, "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": 12 * ((number - 1) % 2), "y": 8 * ((number - 1) // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(65 + n), "datasource": DATASOURCE, "expr": expr,
                     "legendFormat": legend} for n, (expr, legend) in enumerate(targets)]}


def rate(metric: str, by: str, matchers: str = W) -> str:
    return f"sum by ({by}) (rate({metric}{{{matchers}}}[$__rate_interval]))"


def quantile(q: float, metric: str) -> str:
    return (f"histogram_quantile({q}, sum by (le) "
            f"(rate({metric}_bucket{{{W}}}[$__rate_interval])))")


def answers(survey: str, answer: str) -> str:
    return (f'sum by (key) (cxstream_group_answers{{{SEG},survey="{survey}",'
            f'answer="{answer}",{W}}})')


def operations() -> dict[str, Any]:
    panels = [
        panel(1, "Input events per second", [
            (rate("cxstream_events_consumed_total", "topic"), "read {{topic}}"),
            (rate("cxstream_events_accepted_total", "topic"), "accepted {{topic}}")],
            "ops"),
        panel(2, "Consumer lag", [
            (f"max by (topic) (cxstream_consumer_lag_seconds{{{W}}})", "{{topic}} (s)"),
            (f"sum by (topic) (cxstream_consumer_lag_messages{{{W}}})", "{{topic}} (messages)")],
            "s", "Seconds behind (left) and messages waiting per input topic."),
        panel(3, "Batch time", [
            (quantile(0.5, "cxstream_batch_processing_seconds"), "p50"),
            (quantile(0.99, "cxstream_batch_processing_seconds"), "p99"),
            (quantile(0.99, "cxstream_alert_latency_seconds"), "alert latency p99")], "s"),
        panel(4, "Dead letters by class", [
            (rate("cxstream_events_deadlettered_total", "reason"), "{{reason}}")], "ops"),
        panel(5, "Recovery and readiness", [
            (f"sum by (instance) (cxstream_recovery_remaining_records{{{W}}})",
             "{{instance}} changelog records to read"),
            (f"min by (instance) (cxstream_ready{{{W}}})", "{{instance}} ready"),
            (f"sum by (instance) (cxstream_partitions_assigned{{{W}}})",
             "{{instance}} partitions")]),
        panel(6, "Stalls and send retries", [
            (f"sum by (action) (increase(cxstream_partition_stalls_total{{{W}}}"
             f"[$__rate_interval]))", "stalls {{action}}"),
            (rate("cxstream_send_retries_total", "kind"), "send retries {{kind}}")]),
        panel(7, "Webhook delivery", [
            (rate("cxstream_webhook_deliveries_total", "outcome"), "{{outcome}}"),
            (quantile(0.99, "cxstream_webhook_request_seconds"), "request p99 (s)"),
            (f"max(cxstream_webhook_oldest_undelivered_seconds{{{W}}})",
             "oldest undelivered (s)")]),
        panel(8, "Memory and CPU", [
            (f"sum by (instance) (process_resident_memory_bytes{{{W}}})", "{{instance}} RSS"),
            (f"sum by (instance) (rate(process_cpu_seconds_total{{{W}}}[$__rate_interval]))",
             "{{instance}} CPU")], "bytes"),
    ]
    return dashboard("cxstream-operations", "cxstream operations", panels, segment=False)


def cx() -> dict[str, Any]:
    n = answers("nps", "all")
    promoters, detractors = answers("nps", "promoters"), answers("nps", "detractors")
    nps = f"100 * ({promoters} - {detractors}) / {n}"
    # 1.96 standard errors of p - d (docs/scoring.md), in NPS points
    margin = (f"100 * 1.96 * sqrt(clamp_min(({promoters} + {detractors}) / {n} - "
              f"(({promoters} - {detractors}) / {n}) ^ 2, 0) / {n})")
    csat = f'100 * {answers("csat", "satisfied")} / {answers("csat", "all")}'
    panels = [
        panel(1, "NPS per segment", [(nps, "{{key}}"), (f"{nps} - {margin}", "{{key}} low"),
                                     (f"{nps} + {margin}", "{{key}} high")], "none",
              "NPS of the current window with its 95 % margin of error (low and high)."),
        panel(2, "NPS margin of error per segment", [(margin, "{{key}} ±")], "none",
              "Half the width of the 95 % interval: compare segments only when their "
              "intervals do not overlap."),
        panel(3, "CSAT % satisfied per segment", [(csat, "{{key}}")], "percent"),
        panel(4, "Answers per window", [
            (f'sum by (key, survey) (cxstream_group_answers{{{SEG},answer="all",{W}}})',
             "{{key}} {{survey}}")]),
        panel(5, "Alerts raised by rule", [
            (f"sum by (rule) (increase(cxstream_alerts_raised_total{{{W}}}[1h]))",
             "{{rule}} per hour")]),
        panel(6, "Open alerts by status", [
            (f"sum by (status) (cxstream_alerts_open{{{W}}})", "{{status}}"),
            (f"sum by (severity) (cxstream_alerts_overdue{{{W}}})", "overdue {{severity}}")]),
        panel(7, "Time to acknowledge", [
            (quantile(0.5, "cxstream_alert_time_to_acknowledge_seconds"), "p50"),
            (quantile(0.9, "cxstream_alert_time_to_acknowledge_seconds"), "p90")], "s"),
        panel(8, "Customers per quadrant", [
            (f'sum by (quadrant) (cxstream_customers{{segment=~"$segment|all",{W}}})',
             "{{quadrant}}")]),
    ]
    return dashboard("cxstream-cx", "cxstream CX", panels, segment=True)


def dashboard(uid: str, title: str, panels: list[dict[str, Any]],
              segment: bool) -> dict[str, Any]:
    return {"uid": uid, "title": title, "schemaVersion": 39, "version": 1,
            "tags": ["cxstream"], "time": {"from": "now-6h", "to": "now"}, "refresh": "30s",
            "templating": variables(segment), "annotations": {"list": []},
            "panels": panels}


def render() -> dict[str, str]:
    return {f"{board['uid']}.json": json.dumps(board, indent=2) + "\n"
            for board in (operations(), cx())}


if __name__ == "__main__":
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
