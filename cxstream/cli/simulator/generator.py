"""The simulated event stream: CRM profiles, a backfilled history, live traffic, incidents.

Everything comes from ``random.Random`` instances seeded from ``SimConfig.seed``, and
nothing reads the clock: the same config (seed *and* start) gives the same records, byte
for byte. Without ``start`` the caller picks "now", which only moves the timestamps.

Shape of a run (``at`` is the second, from the start of sending, a record is due):
1. at 0: one profile per customer (the CRM snapshot);
2. at 0: ``history_days`` of past traffic, oldest first, with the daily rhythm, so scores
   have a baseline to compare with;
3. from 0 to ``duration``: live traffic at ``rate`` events per second (Poisson arrivals
   shaped by the hour of day), with the scripted incidents and malformed messages mixed in.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cxstream.cli.simulator import texts
from cxstream.cli.simulator.config import SimConfig
from cxstream.cli.simulator.incidents import (
    NPS_DROP_SHARE,
    NPS_DROP_TOUCHPOINT,
    Expectation,
    Plan,
    plan_incidents,
)
from cxstream.cli.simulator.population import (
    SCORES,
    SEGMENT_ACTIVITY,
    Customer,
    Kind,
    build_population,
    pick,
)
from cxstream.cli.simulator.propensity import Traits
from cxstream.scoring.recompute import RawInput

#: relative traffic per hour of the day (UTC), a retail-like day with evening peak
HOURLY = (0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.2, 1.5, 1.6, 1.6,
          1.5, 1.4, 1.4, 1.3, 1.3, 1.4, 1.6, 1.7, 1.5, 1.1, 0.7, 0.4)
RHYTHM = tuple(weight * 24 / sum(HOURLY) for weight in HOURLY)  # mean 1

#: live mix: most events are interactions; some survey answers; a few CRM updates
KINDS: dict[str, float] = {"interactions": 0.76, "feedback": 0.20, "customers": 0.04}
CHANNEL_TOUCHPOINTS: dict[str, tuple[float, dict[str, float]]] = {
    "web": (0.27, {"browse": 0.35, "checkout": 0.30, "account": 0.15, "delivery": 0.10,
                   "returns": 0.05, "billing": 0.05}),
    "app": (0.25, {"browse": 0.35, "checkout": 0.30, "account": 0.15, "delivery": 0.10,
                   "returns": 0.05, "billing": 0.05}),
    "store": (0.12, {"checkout": 0.60, "returns": 0.20, "support": 0.20}),
    "phone": (0.10, {"support": 0.50, "delivery": 0.20, "billing": 0.15, "returns": 0.15}),
    "chat": (0.10, {"support": 0.50, "delivery": 0.20, "billing": 0.15, "returns": 0.15}),
    "email": (0.08, {"support": 0.50, "delivery": 0.20, "billing": 0.15, "returns": 0.15}),
    "social": (0.04, {"brand": 0.50, "delivery": 0.25, "support": 0.25}),
    "billing": (0.02, {"billing": 1.0}),
    "delivery": (0.02, {"delivery": 1.0}),
}
OUTCOMES: dict[str, float] = {"success": 0.955, "failure": 0.02, "abandoned": 0.015,
                              "escalated": 0.01}
SURVEYS: dict[str, float] = {"nps": 0.5, "csat": 0.35, "ces": 0.15}
#: the support agents, and where one handles the customer (phone, chat, the store's desk,
#: support and returns); answers about those carry the agent too
AGENTS = tuple(f"agent-{n:02d}" for n in range(1, 13))
AGENT_CHANNELS = {"phone", "chat", "store"}
AGENT_TOUCHPOINTS = {"support", "returns"}


def handled_by(event: dict[str, Any]) -> str | None:
    """The agent of an event, from its id: no draw from the traffic's random numbers, so
    the rest of the simulated traffic is what it was without agents."""
    if event["channel"] not in AGENT_CHANNELS and event["touchpoint"] not in AGENT_TOUCHPOINTS:
        return None
    return AGENTS[zlib.crc32(event["event_id"].encode()) % len(AGENTS)]


SURVEY_CHANNELS: dict[str, float] = {"email": 0.5, "app": 0.25, "web": 0.2, "phone": 0.05}
SURVEY_TOUCHPOINTS: dict[str, float] = {"checkout": 0.3, "delivery": 0.2, "support": 0.2,
                                        "browse": 0.1, "returns": 0.1, "billing": 0.1}
BAD_NPS: dict[int, float] = {0: 0.15, 1: 0.1, 2: 0.15, 3: 0.15, 4: 0.1, 5: 0.1, 6: 0.05,
                             7: 0.1, 8: 0.05, 9: 0.03, 10: 0.02}
COMMENT_SHARE = 0.35


@dataclass(frozen=True)
class SimRecord:
    """One message to send: when (seconds after the start), where, and its bytes."""

    at: float
    kind: Kind
    key: bytes
    value: bytes
    malformed: str | None = None  # what is wrong with it, for a malformed message
    incident: str | None = None  # the scripted incident it belongs to


@dataclass
class Simulation:
    config: SimConfig
    start: datetime
    population: list[Customer]
    plan: Plan
    #: the hidden traits of the latest ``records`` (SimConfig.propensity; None: off):
    #: each answer's propensity by sequence number, once its record is made
    traits: Traits | None = None

    @property
    def expectations(self) -> list[Expectation]:
        return self.plan.expectations

    def records(self) -> Iterator[SimRecord]:
        """Every record of the run, in sending order."""
        stamp = (self.start - self.config.history_gap(self.start)
                 - timedelta(days=self.config.history_days))
        for customer in self.population:
            yield SimRecord(0.0, "customers", customer.customer_id.encode(),
                            _json(customer.profile(stamp.isoformat())))
        builder = _Builder(self)
        self.traits = builder.traits
        yield from builder.history()
        yield from heapq.merge(builder.live(), builder.incident_records(),
                               key=lambda record: record.at)


def history_inputs(simulation: Simulation, topics: dict[Kind, str]) -> list[RawInput]:
    """The profiles and the history of ``simulation`` as its input topics (named by
    ``topics``) would hold them, for what replays topics (cli.model_training)."""
    return [RawInput(topics[record.kind], 0, number, 0.0, record.key, record.value)
            for number, record in enumerate(itertools.takewhile(
                lambda record: record.at == 0.0, simulation.records()))]


def simulate(config: SimConfig, start: datetime) -> Simulation:
    """Prepare a run; ``start`` is the event time of the live phase's first second."""
    start = config.start or start
    rng = random.Random(f"population-{config.seed}")
    population = build_population(rng, config.customers)
    plan = plan_incidents(random.Random(f"incidents-{config.seed}"), population, config)
    return Simulation(config, start, population, plan)


class _Builder:
    def __init__(self, simulation: Simulation) -> None:
        self.sim = simulation
        self.config = simulation.config
        self.rng = random.Random(f"traffic-{self.config.seed}")
        self.sequence = 0
        self.silent = simulation.plan.never_answers
        self.bad_segment = simulation.plan.nps_drop_segment
        self.bad_from = simulation.plan.nps_drop_from
        self.outage = simulation.plan.outage
        #: cumulative activity of the customers, in population order (SEGMENT_ACTIVITY)
        self.activity = list(itertools.accumulate(
            SEGMENT_ACTIVITY[customer.segment] for customer in simulation.population))
        #: the customers' hidden traits (None: answers do not depend on the customer)
        self.traits = (Traits(simulation.population, self.config.seed)
                       if self.config.propensity else None)

    # -- the three phases --------------------------------------------------------------

    def history(self) -> Iterator[SimRecord]:
        days = self.config.history_days
        total = days * self.config.history_per_day
        if total == 0:
            return
        span = days * 86_400.0
        t = -span
        mean_gap = span / total
        gap = self.config.history_gap(self.sim.start).total_seconds()
        while True:
            t += self.rng.expovariate(self._rhythm(t - gap) / mean_gap)
            if t >= 0:
                return
            yield self._event(0.0, t - gap)

    def live(self) -> Iterator[SimRecord]:
        t = 0.0
        while True:
            t += self.rng.expovariate(self.config.rate * self._rhythm(t))
            if t >= self.config.duration:
                return
            if self.rng.random() < self.config.malformed_share:
                yield self._malformed(t)
            else:
                yield self._event(t, t)

    def incident_records(self) -> Iterator[SimRecord]:
        for at, kind, customer, fields, incident in self.sim.plan.scheduled():
            self.sequence += 1
            event = self._base(kind, customer, at) | fields
            yield SimRecord(at, kind, customer.customer_id.encode(), _json(event),
                            incident=incident)

    def _rhythm(self, offset: float) -> float:
        return _rhythm(self.sim.start, offset) if self.config.daily_rhythm else 1.0

    # -- one event ---------------------------------------------------------------------

    def _event(self, at: float, event_time: float) -> SimRecord:
        rng = self.rng
        customer = rng.choices(self.sim.population, cum_weights=self.activity)[0]
        kind: Kind = pick(rng, KINDS)  # type: ignore[assignment]  # a key of KINDS
        if kind == "feedback" and customer.customer_id in self.silent:
            kind = "interactions"  # the declining high-value customer never answers
        if kind == "customers":
            revalued = Customer(customer.customer_id, customer.segment,
                                round(customer.value * rng.uniform(0.9, 1.2), 2),
                                customer.owner, customer.region, customer.language)
            when = self.sim.start + timedelta(seconds=event_time)
            return SimRecord(at, "customers", customer.customer_id.encode(),
                             _json(revalued.profile(when.isoformat())))
        self.sequence += 1
        event = self._base(kind, customer, event_time)
        event |= (self._interaction(customer, event_time) if kind == "interactions"
                  else self._feedback(customer, event_time))
        agent = handled_by(event)
        if agent is not None:
            event["handled_by"] = agent
        return SimRecord(at, kind, customer.customer_id.encode(), _json(event))

    def _base(self, kind: str, customer: Customer, event_time: float) -> dict[str, Any]:
        prefix = "i" if kind == "interactions" else "f"
        when = self.sim.start + timedelta(seconds=event_time)
        return {"event_id": f"{prefix}-{self.config.seed}-{self.sequence:08d}",
                "customer_id": customer.customer_id,
                "occurred_at": when.isoformat(timespec="milliseconds")}

    def _interaction(self, customer: Customer, event_time: float) -> dict[str, Any]:
        rng = self.rng
        channel = pick(rng, {name: share for name, (share, _) in CHANNEL_TOUCHPOINTS.items()})
        touchpoint = pick(rng, CHANNEL_TOUCHPOINTS[channel][1])
        outcome = (pick(rng, OUTCOMES) if self.traits is None
                   else self.traits.outcome(rng, customer, event_time))
        event: dict[str, Any] = {"channel": channel, "touchpoint": touchpoint,
                                 "outcome": outcome}
        if channel in {"phone", "chat"}:
            event["wait_seconds"] = round(rng.expovariate(1 / (90 if channel == "phone"
                                                               else 45)), 1)
        if channel == "social":
            sentiment = max(-1.0, min(1.0, rng.gauss(0.3, 0.4)))
            event["sentiment"] = round(sentiment, 2)
            bank = texts.SOCIAL_HAPPY if sentiment > 0 else texts.NEUTRAL
            event["text"] = rng.choice(bank[customer.language])
        if touchpoint == "checkout" and event["outcome"] == "success":
            event["amount"] = round(rng.lognormvariate(3.5, 0.9), 2)
        return event

    def _feedback(self, customer: Customer, event_time: float) -> dict[str, Any]:
        rng = self.rng
        survey = pick(rng, SURVEYS)
        distribution = SCORES[survey]
        touchpoint = None
        if (survey == "nps" and customer.segment == self.bad_segment
                and self.bad_from is not None and event_time >= self.bad_from
                and rng.random() < NPS_DROP_SHARE):
            # the segment whose NPS drops, through its deliveries (what its drivers show)
            distribution, touchpoint = BAD_NPS, NPS_DROP_TOUCHPOINT
        if self.traits is not None and touchpoint is None:
            distribution = self.traits.scores(rng, customer, survey, event_time,
                                              self.sequence)
        score = int(pick(rng, {str(k): v for k, v in distribution.items()}))
        event: dict[str, Any] = {"survey": survey, "score": score,
                                 "channel": pick(rng, SURVEY_CHANNELS),
                                 "touchpoint": touchpoint or pick(rng, SURVEY_TOUCHPOINTS)}
        if rng.random() < COMMENT_SHARE:
            event["comment"] = comment_for(rng, customer.language, survey, score,
                                           event["touchpoint"])
            event["language"] = customer.language
        return event

    def _malformed(self, at: float) -> SimRecord:
        from cxstream.cli.simulator.malformed import malformed_record

        customer = self.rng.choice(self.sim.population)
        self.sequence += 1
        base = self._base("feedback", customer, at)
        kind, key, value, what = malformed_record(self.rng, customer.customer_id, base)
        return SimRecord(at, kind, key, value, malformed=what)


def comment_for(rng: random.Random, language: str, survey: str, score: int,
                touchpoint: str) -> str:
    """A comment that fits the score: about the touchpoint's issue when the score is low."""
    low, high = {"nps": (6, 9), "csat": (2, 4), "ces": (3, 6)}[survey]
    if score <= low:
        topic = touchpoint if touchpoint in texts.NEGATIVE else rng.choice(
            ("waiting", "staff", "price", "website_app"))
        return rng.choice(texts.NEGATIVE[topic][language])
    if score >= high:
        return rng.choice(texts.POSITIVE[language])
    return rng.choice(texts.NEUTRAL[language])


def _rhythm(start: datetime, offset: float) -> float:
    hour = (start + timedelta(seconds=offset)).hour
    return RHYTHM[hour] if math.isfinite(offset) else 1.0


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
