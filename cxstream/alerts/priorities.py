"""Priorities: which issues to fix first, ranked by the customers they hit and the revenue
those customers carry, counting the ones who never answered a survey.

Shape: negative signals (group_rules.Signal: a touchpoint or a topic, from a negative
answer or a failed, escalated, slow or negative interaction) with the customer's value
and band -> per input partition, window and issue, an ``IssueCount`` (distinct customers,
of them silent, value, value in the top band) -> summed over partitions -> ranked.

A customer counts once per issue and window. Each partition keeps, per window, which
issues each of its customers counts in (``Marks``); a customer lives in one partition, so
the partitions' counts add up without counting anyone twice. A customer first counted
from an interaction (silent) and later answering negatively about the same issue moves
from silent to answered. The value and band are the customer's latest: a later signal or
a new profile (``revalue``) moves them.

Plain data: the counts are dicts of numbers, the marks dicts of flags, so the fold of a
signal builds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cxstream.scoring.windows import window_start

AREAS = ("trust", "empathy", "delivery", "personalisation", "ease", "responsiveness")
#: the fields of an issue count that add up (all numbers); ``largest``, the largest value
#: one customer brought to the issue in the window, is a maximum
COUNT_FIELDS = ("customers", "silent", "value", "top_customers", "top_value", "predicted",
                "predicted_value")
RankBy = Literal["value", "customers", "mix"]


class PrioritiesConfig(BaseModel):
    """The rules file's ``priorities`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    #: the window the issues are counted over (tumbling, aligned to the epoch like the
    #: score windows); the previous one gives the trend
    window_hours: float = Field(default=24, gt=0, le=24 * 31)
    #: value: revenue at stake; customers: distinct customers; mix: both, weighted (the
    #: default: one large account cannot lead by its value alone)
    rank_by: RankBy = "mix"
    #: mix only: the weight of the value's share of the largest (the rest: customers')
    value_weight: float = Field(default=0.5, ge=0, le=1)
    #: a silent customer whom the prediction model (CXSTREAM_MODEL_FILE) gives at least
    #: this probability of a low answer counts as "predicted at risk" in the issues they
    #: are hit by
    predicted_min: float = Field(default=0.5, gt=0, lt=1)
    #: issues hitting fewer customers are flagged ``few`` and ranked after every issue
    #: that meets it: read their counts, not their rank
    min_customers: int = Field(default=3, ge=1)
    #: topic or touchpoint -> CX area (trust, empathy, delivery, personalisation, ease,
    #: responsiveness), for priorities by area; others are in no area
    areas: dict[str, Literal["trust", "empathy", "delivery", "personalisation", "ease",
                             "responsiveness"]] = {
        "delivery": "delivery", "courier": "delivery", "returns": "delivery",
        "billing": "trust", "price": "trust", "product_quality": "trust",
        "staff": "empathy", "waiting": "responsiveness", "communication": "responsiveness",
        "support": "responsiveness", "website_app": "ease", "checkout": "ease",
        "account": "ease", "onboarding": "personalisation", "renewal": "personalisation"}

    @property
    def window_seconds(self) -> int:
        return max(1, round(self.window_hours * 3600))


# -- counting ---------------------------------------------------------------------------

#: a customer's marks in one window: issue group ("touchpoint:delivery") -> [answered
#: (1 when they answered negatively about it, 0 when only silent signals counted them),
#: the value counted for them, 1 when counted in the top band, and a fourth 1 when
#: predicted at risk (left out otherwise)]
Marks = dict[str, list[float]]


def empty_count() -> dict[str, Any]:
    return {"customers": 0, "silent": 0, "value": 0.0, "top_customers": 0,
            "top_value": 0.0, "predicted": 0, "predicted_value": 0.0, "largest": 0.0,
            "offsets": {}}


def count_signal(count: dict[str, Any], marks: Marks, group: str, answered: bool,
                 value: float | None, top: bool, source: str, offset: int,
                 predicted: bool = False) -> bool:
    """Fold one signal of a customer into the issue's count and the customer's marks, in
    place; True when the count moved.

    A customer counts once; what they count for follows their latest signal: answered
    once they answered negatively, and the value and band they have now (a profile read
    after their first signal counts from their next one, or from ``revalue``).

    ``source``: the input topic's kind ("i", "f" or "c") and ``offset`` the event's
    offset in it: an event at or below the count's offset for that kind is already in it
    (read again after a crash that kept the count but not the customer), so only the
    marks are brought up to date.
    """
    before = marks.get(group)
    worth = value if value is not None else (before[1] if before is not None else 0.0)
    after = [1 if answered or (before is not None and before[0] == 1) else 0, worth,
             1 if top else 0, *((1,) if predicted else ())]
    marks[group] = after
    offsets: dict[str, int] = count["offsets"]
    if offset <= offsets.get(source, -1):
        return False
    if before is None:
        count["customers"] += 1
        count["silent"] += 1 - after[0]
        _add_value(count, after, 1)
    else:
        if after == before:
            return False
        count["silent"] -= after[0] - before[0]
        _add_value(count, before, -1)
        _add_value(count, after, 1)
    offsets[source] = offset
    return True


def revalue(count: dict[str, Any], marks: Marks, group: str, value: float, top: bool,
            offset: int) -> bool:
    """A new profile of a customer counted in the issue: the count takes their new value
    and band (``offset``: the profile's offset in the customers topic)."""
    before = marks.get(group)
    if before is None:
        return False
    after = [before[0], value, 1 if top else 0, *before[3:4]]
    marks[group] = after
    offsets: dict[str, int] = count["offsets"]
    if after == before or offset <= offsets.get("c", -1):
        return False
    _add_value(count, before, -1)
    _add_value(count, after, 1)
    offsets["c"] = offset
    return True


def _add_value(count: dict[str, Any], mark: list[float], sign: int) -> None:
    count["value"] += sign * mark[1]
    count["top_customers"] += sign * mark[2]
    count["top_value"] += sign * mark[1] * mark[2]
    predicted = mark[3] * (1 - mark[0]) if len(mark) > 3 else 0  # silent ones only
    count["predicted"] = count.get("predicted", 0) + sign * predicted
    count["predicted_value"] = count.get("predicted_value", 0.0) + sign * mark[1] * predicted
    if sign > 0 and mark[1] > count.get("largest", 0.0):
        # a maximum only rises: a customer's value lowered later leaves it until the
        # window ends (the largest account's share is then an upper bound)
        count["largest"] = mark[1]


def signal_window(at_seconds: float, config: PrioritiesConfig) -> int:
    return window_start(at_seconds, config.window_seconds)


def counted_windows(now: float, config: PrioritiesConfig) -> tuple[int, int]:
    """(current, previous) window starts at ``now``: a signal counts in these only (an
    older one is too late to change what to fix now)."""
    current = signal_window(now, config)
    return current, current - config.window_seconds


def counts(rows: Iterable[tuple[int, str, dict[str, Any]]]) -> dict[tuple[int, str],
                                                                       dict[str, float]]:
    """Sum partitions' counts: (window start, group, count) -> per (start, group)."""
    summed: dict[tuple[int, str], dict[str, float]] = {}
    for start, group, count in rows:
        into = summed.setdefault((start, group), dict.fromkeys(COUNT_FIELDS, 0))
        _add_count(into, count)
    return summed


def _add_count(into: dict[str, float], count: dict[str, Any]) -> None:
    for name in COUNT_FIELDS:
        into[name] += count.get(name, 0)  # counts of before 0.4.0 lack the predicted
    into["largest"] = max(into.get("largest", 0.0), count.get("largest", 0.0))


# -- ranking -----------------------------------------------------------------------------

def ranking(summed: dict[tuple[int, str], dict[str, float]], current: int, previous: int,
            config: PrioritiesConfig, rank_by: RankBy | None = None,
            kind: str | None = None, by_area: bool = False) -> dict[str, Any]:
    """The issues of window ``current``, first what to fix first, with the trend against
    window ``previous``. ``kind``: touchpoint or topic only; ``by_area``: the issues
    summed per CX area (a customer hit by two issues of one area counts in both: the
    area's customers are an upper bound, said in the answer)."""
    rank_by = rank_by or config.rank_by
    now = _issues(summed, current, kind, by_area, config)
    before = _issues(summed, previous, kind, by_area, config)
    top_value = max((spread_value(row) for row in now.values()), default=0.0)
    top_customers = max((row["customers"] for row in now.values()), default=0)
    rows = []
    for name, row in now.items():
        score = priority_score(row, rank_by, config.value_weight, top_value, top_customers)
        rows.append(_row(name, row, before.get(name), score, config))
    # an issue of too few customers never ranks above one that has enough
    rows.sort(key=lambda row: (row["few"], -row["score"], -row["customers"], row["issue"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    answer: dict[str, Any] = {
        "rank_by": rank_by, "window_hours": config.window_hours,
        "value_weight": config.value_weight if rank_by == "mix" else None,
        "min_customers": config.min_customers, "issues": rows}
    if by_area:
        answer["note"] = ("an area adds up its issues: a customer hit by two issues of "
                          "one area counts twice")
    return answer


def spread_value(row: dict[str, float]) -> float:
    """The value at stake with the issue's largest account counted at most as much as
    all its other customers together: what ``mix`` weighs, so that one account cannot
    make an issue lead by itself (its value is still shown whole)."""
    value = row["value"]
    return min(value, 2 * (value - row.get("largest", 0.0)))


def priority_score(row: dict[str, float], rank_by: RankBy, value_weight: float,
                   top_value: float, top_customers: float) -> float:
    """What the ranking sorts by: the revenue at stake, the customers, or a weighted mix
    of each one's share of the largest in the window (the value spread: no account
    counts more than the issue's other customers together, ``spread_value``)."""
    if rank_by == "value":
        return round(row["value"], 6)
    if rank_by == "customers":
        return float(row["customers"])
    value_share = spread_value(row) / top_value if top_value else 0.0
    customer_share = row["customers"] / top_customers if top_customers else 0.0
    return round(value_weight * value_share + (1 - value_weight) * customer_share, 6)


def _issues(summed: dict[tuple[int, str], dict[str, float]], start: int, kind: str | None,
            by_area: bool, config: PrioritiesConfig) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for (window, group), count in summed.items():
        if window != start:
            continue
        group_kind, key = group.split(":", 1)
        if kind is not None and group_kind != kind:
            continue
        if by_area:
            area = config.areas.get(key)
            if area is None:
                continue
            into = found.setdefault(f"area:{area}", dict.fromkeys(COUNT_FIELDS, 0))
            _add_count(into, count)
        else:
            found[group] = dict(count)
    return found


def _row(name: str, row: dict[str, float], before: dict[str, float] | None, score: float,
         config: PrioritiesConfig) -> dict[str, Any]:
    kind, key = name.split(":", 1)
    customers = int(row["customers"])
    value = round(row["value"], 2)
    answer: dict[str, Any] = {
        "issue": name, "kind": kind, "key": key,
        "area": config.areas.get(key) if kind != "area" else key,
        "customers": customers, "silent": int(row["silent"]),
        "answered": customers - int(row["silent"]),
        "value": value, "top_customers": int(row["top_customers"]),
        "top_value": round(row["top_value"], 2),
        "top_value_share": round(row["top_value"] / row["value"], 3) if row["value"] else None,
        "predicted_at_risk": int(row.get("predicted", 0)),
        "predicted_value": round(row.get("predicted_value", 0.0), 2),
        "largest_value": round(row.get("largest", 0.0), 2),
        "largest_share": round(min(row.get("largest", 0.0) / row["value"], 1.0), 3)
        if row["value"] else None,
        "score": score, "few": customers < config.min_customers,
        "previous": None, "trend": "new"}
    if before is not None:
        answer["previous"] = {"customers": int(before["customers"]),
                              "value": round(before["value"], 2)}
        answer["trend"] = _trend(customers, int(before["customers"]))
        answer["change"] = {"customers": customers - int(before["customers"]),
                            "value": round(row["value"] - before["value"], 2)}
    return answer


def _trend(now: int, before: int) -> str:
    if now > before:
        return "rising"
    if now < before:
        return "falling"
    return "steady"


__all__ = ["AREAS", "PrioritiesConfig", "count_signal", "counted_windows", "counts",
           "ranking", "revalue"]
