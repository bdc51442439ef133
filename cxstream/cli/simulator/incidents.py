"""Scripted incidents the alert rules should catch, and the alerts that prove they did.

Times are fractions of the live phase, so a 40-second test run and a 3-minute demo play
the same script:
- a delivery outage in one region (15-55%): failed deliveries and angry delivery answers
  from that region's customers -> recurring_issue at the delivery touchpoint;
- the most valuable customer's experience degrades (four bad interactions at 25-55%)
  while they never answer a survey -> high_value_at_risk for that customer;
- a burst of angry public posts (60-70%) from eight ordinary customers ->
  social_negative for each of them;
- one segment's NPS drops from 30% on: most of its customers' NPS answers are about
  deliveries, and mostly negative -> segment_drop for that segment and NPS, with
  delivery its top driver.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cxstream.cli.simulator import texts
from cxstream.cli.simulator.config import SimConfig
from cxstream.cli.simulator.population import Customer, Kind

OUTAGE_REGION = "LT"
OUTAGE_WINDOW = (0.15, 0.55)
#: extra events during the outage, as a share of the live rate, and the share of them that
#: are angry NPS answers (the rest: failed or escalated deliveries). Sized so that the
#: segments outside the NPS drop keep a plausible NPS (+20 to +50) over the demo's day
#: (tests/unit/test_simulator.py), while the outage still leads what to fix first
OUTAGE_RATE_SHARE = 0.1
OUTAGE_ANSWER_SHARE = 0.1
DECLINE_AT = (0.25, 0.35, 0.45, 0.55)
SOCIAL_WINDOW = (0.60, 0.70)
SOCIAL_CUSTOMERS = 8
NPS_DROP_SEGMENT = "smb"
NPS_DROP_FROM = 0.30
#: the share of the segment's NPS answers, from then on, about this touchpoint and bad
NPS_DROP_SHARE, NPS_DROP_TOUCHPOINT = 0.6, "delivery"
BAD_NPS_SCORES = (0, 1, 2, 3, 4, 5)

DECLINE_EVENTS: tuple[dict[str, Any], ...] = (
    {"channel": "phone", "touchpoint": "support", "outcome": "escalated",
     "wait_seconds": 1500.0},
    {"channel": "billing", "touchpoint": "billing", "outcome": "failure"},
    {"channel": "app", "touchpoint": "checkout", "outcome": "abandoned"},
    {"channel": "chat", "touchpoint": "support", "outcome": "escalated", "sentiment": -0.6},
)


@dataclass(frozen=True)
class Expectation:
    """An incident and the alert that shows it was caught."""

    incident: str
    rule: str
    customers: frozenset[str] = frozenset()  # each needs its own alert
    segment: str | None = None
    key: str | None = None  # recurring issue: the touchpoint or topic
    metric: str | None = None  # segment drop: the metric

    def matches(self, alert: dict[str, Any]) -> bool:
        """Whether ``alert`` (as published on the alerts topic) is one this incident needs."""
        fired = set(alert.get("reason", {}).get("rules_fired", ())) | {alert.get("rule")}
        if self.rule not in fired:
            return False
        reason = alert.get("reason", {})
        if self.customers and alert.get("customer_id") not in self.customers:
            return False
        if self.segment is not None and alert.get("segment") != self.segment:
            return False
        if self.key is not None and reason.get("key") != self.key:
            return False
        return self.metric is None or reason.get("metric") == self.metric

    def caught_by(self, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The alerts that catch this incident; empty until every subject has one."""
        found = [alert for alert in alerts if self.matches(alert)]
        if self.customers and {a.get("customer_id") for a in found} != set(self.customers):
            return []
        return found


@dataclass
class Plan:
    """The incidents of one run, drawn once from the seed."""

    expectations: list[Expectation] = field(default_factory=list)
    never_answers: set[str] = field(default_factory=set)
    nps_drop_segment: str | None = None
    nps_drop_from: float | None = None
    outage: tuple[str, float, float] | None = None
    events: list[tuple[float, Kind, Customer, dict[str, Any], str]] = field(
        default_factory=list)

    def scheduled(self) -> Iterator[tuple[float, Kind, Customer, dict[str, Any], str]]:
        return iter(self.events)


def plan_incidents(rng: random.Random, population: list[Customer],
                   config: SimConfig) -> Plan:
    """The scripted incidents of a simulation, each with what should catch it; the RNG
    is drawn in the same order whatever the incidents' sizes (same seed, same plan)."""
    plan = Plan()
    if not config.incidents:
        return plan
    vip = _high_value_decline(plan, population, config.duration)
    _delivery_outage(rng, plan, population, vip, config)
    _social_burst(rng, plan, population, vip, config.duration)
    # a segment's NPS drops
    plan.nps_drop_segment = NPS_DROP_SEGMENT
    plan.nps_drop_from = NPS_DROP_FROM * config.duration
    plan.expectations.append(Expectation(
        f"NPS drop in segment {NPS_DROP_SEGMENT}", "segment_drop",
        segment=NPS_DROP_SEGMENT, metric="nps"))
    plan.events.sort(key=lambda item: (item[0], item[2].customer_id))
    return plan


def _high_value_decline(plan: Plan, population: list[Customer], duration: float
                        ) -> Customer:
    """The most valuable customer degrades and never answers a survey."""
    vip = max(population, key=lambda customer: customer.value)
    plan.never_answers.add(vip.customer_id)
    for fraction, decline in zip(DECLINE_AT, DECLINE_EVENTS, strict=True):
        plan.events.append((fraction * duration, "interactions", vip, dict(decline),
                            "high-value decline"))
    plan.expectations.append(Expectation(
        f"high-value customer {vip.customer_id} declining without answering surveys",
        "high_value_at_risk", customers=frozenset({vip.customer_id})))
    return vip


def _delivery_outage(rng: random.Random, plan: Plan, population: list[Customer],
                     vip: Customer, config: SimConfig) -> None:
    """A delivery outage in one region: failures, escalations and angry answers."""
    region = [c for c in population if c.region == OUTAGE_REGION and c is not vip]
    start, end = (fraction * config.duration for fraction in OUTAGE_WINDOW)
    plan.outage = (OUTAGE_REGION, start, end)
    for at in _arrivals(rng, start, end, OUTAGE_RATE_SHARE * config.rate):
        customer = rng.choice(region)
        if rng.random() >= OUTAGE_ANSWER_SHARE:
            channel = rng.choice(("phone", "chat", "web", "app"))
            fields: dict[str, Any] = {"channel": channel, "touchpoint": "delivery",
                                      "outcome": rng.choice(("failure", "escalated"))}
            if channel in {"phone", "chat"}:
                fields["wait_seconds"] = round(rng.uniform(600, 1800), 1)
            plan.events.append((at, "interactions", customer, fields, "delivery outage"))
        else:
            fields = {"survey": "nps", "score": rng.choice(BAD_NPS_SCORES[:5]),
                      "channel": "email", "touchpoint": "delivery",
                      "comment": rng.choice(texts.NEGATIVE["delivery"][customer.language]),
                      "language": customer.language}
            plan.events.append((at, "feedback", customer, fields, "delivery outage"))
    plan.expectations.append(Expectation(
        f"delivery outage in {OUTAGE_REGION}", "recurring_issue", key="delivery"))


def _social_burst(rng: random.Random, plan: Plan, population: list[Customer],
                  vip: Customer, duration: float) -> None:
    """A burst of angry social posts from ordinary customers."""
    consumers = sorted((c for c in population if c.segment == "consumer" and c is not vip),
                       key=lambda customer: customer.value)
    ordinary = consumers[: max(SOCIAL_CUSTOMERS, len(consumers) // 2)]
    posters = rng.sample(ordinary, min(SOCIAL_CUSTOMERS, len(ordinary)))
    start, end = (fraction * duration for fraction in SOCIAL_WINDOW)
    for customer in posters:
        plan.events.append((rng.uniform(start, end), "interactions", customer, {
            "channel": "social", "touchpoint": "brand",
            "sentiment": round(rng.uniform(-0.95, -0.7), 2),
            "text": rng.choice(texts.SOCIAL_ANGRY[customer.language])}, "social burst"))
    plan.expectations.append(Expectation(
        f"burst of negative social posts ({len(posters)} customers)", "social_negative",
        customers=frozenset(c.customer_id for c in posters)))


def _arrivals(rng: random.Random, start: float, end: float, rate: float) -> Iterator[float]:
    t = start
    while rate > 0:
        t += rng.expovariate(rate)
        if t >= end:
            return
        yield t
