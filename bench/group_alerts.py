"""Group alerts over simulated months: false alerts of a quiet month, the delay to find
injected drops, and whether the drivers name the degraded touchpoint, for the group-drop
test of 0.5 (test: fdr: z-tests at a false discovery rate and a CUSUM) next to the
margin test of before (test: margin), in one run.

    .venv/bin/python -m bench.group_alerts [--groups 500] [--days 30] [--runs 5]
        [--every-minutes 15] [--seed 1] [--only quiet|drops] [--cusum-threshold H]
        [--false-discovery-rate Q]

What it drives: alerts.group_drops.DropEvaluation, the evaluation a worker runs on the
tallies of its groups (current day and the 7 days before), every --every-minutes
simulated minutes (a worker evaluates every 30 s: the bench looks less often, which gives
the z-tests fewer chances of a false discovery than a worker has; see the figures of
--every-minutes 5). No Kafka: the tallies are made here, answer by answer.

The population: --groups groups, a quarter each of segments, channels, touchpoints and
stages, answering NPS 10 to 1,000 times a day (CSAT and CES half as often each), each with
its own plausible scores (NPS +10 to +50), answers spread over the day as in the
simulator (more in the day than at night).

1. A quiet month: --days days after a week of baseline, nothing changes; every alert is
   false.
2. Drops: in each of --runs runs, twelve groups (NPS 50, 100, 200 and 500 answers a day,
   drops of 10, 15 and 25 NPS points) get a degraded touchpoint from a random hour of
   their day on: the touchpoint holding 30 % of the group's answers loses
   drop / 0.3 points, from promoters to detractors. The delay is from the start of the
   drop to the first alert of that group's NPS (none within 5 days: missed; the
   baseline week then holds more and more of the drop).
3. Drivers: for every drop found, whether the degraded touchpoint is the top driver of
   the group's change against its baseline (scoring.drivers).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from cxstream.alerts.config import RulesConfig, load_rules
from cxstream.alerts.group_drops import DropEvaluation
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.drivers import decompose
from cxstream.scoring.tallies import Tally, add_answer

DAY = 86_400
BASELINE_DAYS = 7
DIMENSIONS = ("segment", "channel", "touchpoint", "stage")
SIZES = (10, 20, 50, 100, 200, 500, 1000)
SIZE_WEIGHTS = (3, 3, 3, 2, 2, 1, 1)
PART_SHARES = (0.3, 0.2, 0.2, 0.15, 0.15)  # a group's touchpoints
DROP_SIZES = (50, 100, 200, 500)
DROPS = (10, 15, 25)
MISSED_AFTER_DAYS = 5
#: answers over the hours of a day (as the simulator's rhythm: quiet at night)
RHYTHM = tuple(0.3 if hour < 7 else 1.5 if 9 <= hour < 18 else 0.8 for hour in range(24))
START = datetime(2027, 1, 4, tzinfo=UTC).timestamp()
console = Console()


@dataclass
class Group:
    dimension: str
    key: str
    nps_per_day: int
    nps: tuple[float, float, float]  # promoters, passives, detractors
    csat_satisfied: float
    ces_mean: float
    #: part -> its own NPS distribution, for injected groups (else None)
    parts: dict[str, tuple[float, float, float]] | None = None
    degraded: str | None = None
    drop_from: float | None = None  # epoch seconds
    drop: float = 0.0
    #: day start -> counts of the day (tally fields), and per part for injected groups
    days: dict[int, dict[str, Any]] = field(default_factory=dict)
    part_days: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)


def population(count: int, rng: random.Random) -> list[Group]:
    groups = []
    for n in range(count):
        size = rng.choices(SIZES, SIZE_WEIGHTS)[0]
        nps_target = rng.uniform(10, 50) / 100
        passives = rng.uniform(0.25, 0.35)
        promoters = (1 - passives + nps_target) / 2
        groups.append(Group(DIMENSIONS[n % 4], f"g{n}", size,
                            (promoters, passives, 1 - passives - promoters),
                            rng.uniform(0.7, 0.9), rng.uniform(4.8, 6.0)))
    return groups


def poisson(rate: float, rng: random.Random) -> int:
    """Knuth's method: the rates here are small (at most a few tens per step)."""
    limit, k, product = math.exp(-rate), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def nps_score(distribution: tuple[float, float, float], rng: random.Random) -> int:
    draw = rng.random()
    if draw < distribution[0]:
        return 9 + (rng.random() < 0.5)
    if draw < distribution[0] + distribution[1]:
        return 7 + (rng.random() < 0.5)
    return rng.randrange(0, 7)


def shifted(distribution: tuple[float, float, float], points: float
            ) -> tuple[float, float, float]:
    move = min(points / 200, distribution[0])
    return distribution[0] - move, distribution[1], distribution[2] + move


class World:
    """The groups' answers, step by step, and the evaluation of each method."""

    def __init__(self, groups: list[Group], conventions: Conventions, seed: int,
                 step_seconds: int) -> None:
        self.groups = groups
        self.conventions = conventions
        self.rng = random.Random(seed)
        self.step = step_seconds
        self.baselines: dict[tuple[str, int], Tally] = {}  # (group key, day): its baseline

    def answer(self, group: Group, at: float) -> None:
        """The answers of one step of ``group`` (ending at ``at``)."""
        hour = int(at % DAY // 3600)
        weight = RHYTHM[hour] / (sum(RHYTHM) / 24)
        day = int(at // DAY * DAY)
        counts = group.days.setdefault(day, dict.fromkeys(Tally.model_fields, 0))
        dropping = group.drop_from is not None and at >= group.drop_from
        for survey, per_day in (("nps", group.nps_per_day), ("csat", group.nps_per_day / 2),
                                ("ces", group.nps_per_day / 2)):
            for _ in range(poisson(per_day * weight * self.step / DAY, self.rng)):
                if survey == "nps":
                    part = None
                    distribution = group.nps
                    if group.parts is not None:
                        part = self.rng.choices(list(group.parts), PART_SHARES)[0]
                        distribution = group.parts[part]
                        if dropping and part == group.degraded:
                            distribution = shifted(distribution, group.drop / PART_SHARES[0])
                    score = nps_score(distribution, self.rng)
                    if part is not None:
                        add_answer(group.part_days.setdefault(day, {}).setdefault(
                            part, dict.fromkeys(Tally.model_fields, 0)), "nps", score,
                            self.conventions)
                elif survey == "csat":
                    score = 4 + (self.rng.random() < 0.5) if (
                        self.rng.random() < group.csat_satisfied) else self.rng.randint(1, 3)
                else:
                    score = min(7, max(1, round(self.rng.gauss(group.ces_mean, 1.2))))
                add_answer(counts, survey, score, self.conventions)

    def tallies(self, group: Group, day: int) -> tuple[Tally, Tally]:
        current = Tally(**group.days.get(day, {}))
        baseline = self.baselines.get((group.key, day))
        if baseline is None:  # the days before do not change any more
            baseline = Tally()
            for back in range(1, BASELINE_DAYS + 1):
                baseline = baseline.merge(Tally(**group.days.get(day - back * DAY, {})))
            self.baselines[(group.key, day)] = baseline
        return current, baseline

    def run(self, until: float, methods: dict[str, DropEvaluation], since: float = START,
            ) -> dict[str, list[tuple[float, Any]]]:
        """Answer and evaluate from ``since`` to ``until``: (time, alert) per method, for
        the evaluations after the baseline week."""
        raised: dict[str, list[tuple[float, Any]]] = {name: [] for name in methods}
        seen: dict[str, set[str]] = {name: set() for name in methods}
        at = since
        while at < until:
            at += self.step
            for group in self.groups:
                self.answer(group, at)
            if at < START + BASELINE_DAYS * DAY:
                continue
            day = int(at // DAY * DAY)
            groups = {(g.dimension, g.key): self.tallies(g, day) for g in self.groups}
            now = datetime.fromtimestamp(at, UTC)
            for name, evaluation in methods.items():
                alerts, _ = evaluation.evaluate(groups, "day", day, now)
                for alert in alerts:
                    if alert.alert_id not in seen[name]:  # a worker raises an id once
                        seen[name].add(alert.alert_id)
                        raised[name].append((at, alert))
        return raised


def methods(config: RulesConfig, conventions: Conventions) -> dict[str, DropEvaluation]:
    rule = config.segment_drop
    margin = config.model_copy(update={"segment_drop": rule.model_copy(
        update={"test": "margin"})})
    return {"fdr + cusum (0.5)": DropEvaluation(config, conventions),
            "margin (before 0.5)": DropEvaluation(margin, conventions)}


@dataclass
class Quiet:
    raised: dict[str, list[tuple[float, Any]]]  # method -> (time, alert)
    sizes: dict[str, int]  # group key -> its NPS answers a day


def quiet_month(args: argparse.Namespace, config: RulesConfig, conventions: Conventions
                ) -> Quiet:
    rng = random.Random(args.seed)
    world = World(population(args.groups, rng), conventions, args.seed, args.every * 60)
    raised = world.run(START + (BASELINE_DAYS + args.days) * DAY, methods(config, conventions))
    return Quiet(raised, {group.key: group.nps_per_day for group in world.groups})


@dataclass
class Found:
    size: int
    drop: float
    delay_hours: dict[str, float | None]
    top_driver_right: bool | None
    first_by: str  # the test of the first alert (fdr + cusum), or "missed"


def drop_runs(args: argparse.Namespace, config: RulesConfig, conventions: Conventions
              ) -> list[Found]:
    found: list[Found] = []
    for run in range(args.runs):
        rng = random.Random(args.seed * 1000 + run)
        groups = population(args.groups - len(DROP_SIZES) * len(DROPS), rng)
        injected = []
        for size in DROP_SIZES:
            for drop in DROPS:
                parts = {f"tp{k}": (0.5, 0.3, 0.2) for k in range(len(PART_SHARES))}
                day = START + (BASELINE_DAYS + 1 + rng.randrange(3)) * DAY
                group = Group(rng.choice(DIMENSIONS), f"drop-{size}-{drop}", size,
                              (0.5, 0.3, 0.2), 0.8, 5.5, parts, "tp0",
                              day + rng.randrange(24) * 3600, drop)
                injected.append(group)
        world = World(groups + injected, conventions, args.seed * 1000 + run,
                      args.every * 60)
        last = max(g.drop_from or 0 for g in injected) + MISSED_AFTER_DAYS * DAY
        raised = world.run(last, methods(config, conventions))
        for group in injected:
            assert group.drop_from is not None
            delays: dict[str, float | None] = {}
            first: tuple[float, Any] | None = None
            for name, alerts in raised.items():
                hits = [(at, alert) for at, alert in alerts
                        if alert.reason["key"] == group.key
                        and alert.reason["metric"] == "nps" and at >= group.drop_from
                        and at <= group.drop_from + MISSED_AFTER_DAYS * DAY]
                delays[name] = (hits[0][0] - group.drop_from) / 3600 if hits else None
                if name.startswith("fdr") and hits:
                    first = hits[0]
            found.append(Found(group.nps_per_day, group.drop, delays,
                               None if first is None else
                               top_driver(world, group, first[0], conventions),
                               "missed" if first is None else first[1].reason["test"]))
    return found


def top_driver(world: World, group: Group, at: float, conventions: Conventions) -> bool:
    """Whether the degraded touchpoint leads the drivers of the group's NPS change, the
    day of the alert against the 7 days before (as the alert's drivers are computed)."""
    day = int(at // DAY * DAY)
    parts = {}
    for part in group.parts or {}:
        now = Tally(**group.part_days.get(day, {}).get(part, {}))
        before = Tally()
        for back in range(1, BASELINE_DAYS + 1):
            before = before.merge(Tally(**group.part_days.get(day - back * DAY, {}).get(
                part, {})))
        parts[part] = (before, now)
    split = decompose("nps", parts, conventions)
    return bool(split.drivers) and split.drivers[0].part == group.degraded


def report_quiet(args: argparse.Namespace, quiet: Quiet) -> None:
    table = Table("test", "false group alerts", "per 100 groups", "found by",
                  "by dimension", "by NPS answers a day",
                  title=f"A quiet month: {args.groups} groups, {args.days} days, evaluated "
                  f"every {args.every} simulated minutes")
    for name, alerts in quiet.raised.items():
        by_test = counted(f'{alert.reason.get("test", "margin")} {alert.reason["metric"]}'
                          for _, alert in alerts)
        by_dimension = counted(alert.reason.get("dimension", "segment") for _, alert in alerts)
        by_size = "; ".join(
            f"{test}: " + counted(quiet.sizes[alert.reason["key"]] for _, alert in alerts
                                  if alert.reason.get("test", "margin") == test)
            for test in sorted({alert.reason.get("test", "margin") for _, alert in alerts}))
        table.add_row(name, str(len(alerts)), f"{100 * len(alerts) / args.groups:.2f}",
                      by_test, by_dimension, by_size)
    console.print(table)
    groups = counted(quiet.sizes.values())
    console.print(f"groups by NPS answers a day: {groups}")


def counted(values: Any) -> str:
    counts: dict[Any, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return ", ".join(f"{value} {n}" for value, n in sorted(counts.items())) or "-"


def report_drops(args: argparse.Namespace, found: list[Found]) -> None:
    names = list(found[0].delay_hours)
    drops = Table("NPS answers a day", "drop (points)",
                  *(f"{name}: found, median delay (h)" for name in names),
                  title=f"Injected drops: {args.runs} runs, found within "
                  f"{MISSED_AFTER_DAYS} days")
    for size in DROP_SIZES:
        for drop in DROPS:
            cells = []
            for name in names:
                delays = [f.delay_hours[name] for f in found if f.size == size
                          and f.drop == drop]
                hits = [d for d in delays if d is not None]
                median = f"{statistics.median(hits):.1f}" if hits else "-"
                cells.append(f"{len(hits)}/{len(delays)}, {median}")
            drops.add_row(str(size), str(drop), *cells)
    console.print(drops)
    console.print(f"first found by (fdr + cusum): {counted(f.first_by for f in found)}")
    judged = [f.top_driver_right for f in found if f.top_driver_right is not None]
    console.print(f"drivers: the degraded touchpoint was the top driver in "
                  f"{sum(judged)} of {len(judged)} drops found (fdr + cusum)")
    for f in found:
        if f.top_driver_right is False:
            delay = f.delay_hours[names[0]]
            console.print(f"  not the top driver: {f.size} answers a day, {f.drop} points, "
                          f"found after {delay:.1f} h")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--every", "--every-minutes", type=int, default=15, dest="every")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cusum-threshold", type=float,
                        help="the rule's cusum_threshold (default: the rules file's)")
    parser.add_argument("--false-discovery-rate", type=float,
                        help="the rule's false_discovery_rate (default: the rules file's)")
    parser.add_argument("--only", choices=("quiet", "drops"),
                        help="one part: the quiet month or the injected drops")
    args = parser.parse_args()
    config, conventions = load_rules(), Conventions()
    changed = {name: value for name, value in (
        ("cusum_threshold", args.cusum_threshold),
        ("false_discovery_rate", args.false_discovery_rate)) if value is not None}
    if changed:  # validated as a rules file's would be
        rule = config.segment_drop.model_validate({**config.segment_drop.model_dump(),
                                                   **changed})
        config = config.model_copy(update={"segment_drop": rule})
    console.print(f"segment_drop: false_discovery_rate "
                  f"{config.segment_drop.false_discovery_rate}, cusum_shift "
                  f"{config.segment_drop.cusum_shift}, cusum_threshold "
                  f"{config.segment_drop.cusum_threshold}")
    began = time.perf_counter()
    if args.only in (None, "quiet"):
        report_quiet(args, quiet_month(args, config, conventions))
    if args.only in (None, "drops"):
        report_drops(args, drop_runs(args, config, conventions))
    console.print(f"{time.perf_counter() - began:.0f} s; seed {args.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
