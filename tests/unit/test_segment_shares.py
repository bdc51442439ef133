"""Segment drops from the shares each partition sends: the same alerts as adding up every
partition's tallies, whatever the order or the repeats in which the shares arrive."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cxstream.alerts.config import load_rules
from cxstream.alerts.group_rules import segment_drop_alerts
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.fold import partial_key
from cxstream.scoring.partials_index import PartialsIndex
from cxstream.scoring.reports import merge_rows
from cxstream.scoring.tallies import Tally
from cxstream.scoring.windows import window_specs, window_start
from cxstream.streams.groups.segment_drops import SegmentShares, SegmentTallies, tally_key
from cxstream.streams.kafka.changelog import BulkChangelog

DAY = 86_400
NOW = datetime(2026, 11, 30, 15, tzinfo=UTC)
TODAY = window_start(NOW.timestamp(), DAY)
CONFIG = load_rules().model_copy(update={"segment_drop": load_rules().segment_drop.model_copy(
    update={"metrics": ["ces"], "window": "day", "baseline_windows": 3, "min_sample": 5,
            "margins": {"ces": 0.5}, "test": "margin"})})
CONVENTIONS = Conventions()
SPEC = next(spec for spec in window_specs(7) if spec.name == "day")


def ces_tally(scores: list[int]) -> dict[str, Any]:
    tally = Tally()
    for score in scores:
        tally = tally.record("ces", score, CONVENTIONS)
    return tally.model_dump()


def table() -> Any:
    return SimpleNamespace(data={}, key_serializer="raw", value_serializer="raw",
                           changelog_topic=SimpleNamespace(get_topic_name=lambda: "cl"))


def tallies_on(owned: set[int], store: Any = None) -> tuple[SegmentTallies, list[Any]]:
    sent: list[Any] = []

    async def send(topic: str, partition: int, records: list[Any]) -> None:
        sent.append((partition, records))

    tallies = SegmentTallies(store or table(), SPEC, CONFIG, CONVENTIONS,
                             BulkChangelog(send), lambda: owned)
    tallies.load([], owned)  # as after a recovery of an empty table
    return tallies, sent


#: per input partition and day back (0: today): the CES answers of segment "smb"
answers = st.lists(st.lists(st.lists(st.integers(1, 7), max_size=6), min_size=4, max_size=4),
                   min_size=1, max_size=4)


@settings(max_examples=100, deadline=None)
@given(answers=answers, seed=st.integers(0, 10_000))
def test_shares_in_any_order_with_repeats_give_the_alerts_of_the_summed_tallies(
        answers: list[list[list[int]]], seed: int) -> None:
    shares = SegmentShares(SPEC, 3, PartialsIndex())
    sent = []
    rows = []
    for partition, days in enumerate(answers):
        offset = 0
        for back, scores in enumerate(days):
            start = TODAY - back * DAY
            for upto in range(len(scores) + 1):  # every state the tally went through
                offset += 1
                partial = {"tally": ces_tally(scores[:upto]), "offset": offset}
                key = partial_key(partition, "segment", "day", start, "smb")
                sent += shares.outputs(partition, {
                    key: partial, partial_key(partition, "channel", "day", start, "web"):
                    partial})
            rows.append(("day", start, "smb", ces_tally(scores)))
    random.Random(seed).shuffle(sent)  # reordered, and some sent twice
    tallies, _ = tallies_on({0})
    for share in sent + sent[: seed % (len(sent) + 1)]:
        tallies.fold(0, share.encode())
    merged = merge_rows(rows)
    baseline = Tally()
    for back in (1, 2, 3):
        baseline = baseline.merge(merged.get(("day", TODAY - back * DAY, "smb"), Tally()))
    expected = segment_drop_alerts("smb", merged.get(("day", TODAY, "smb"), Tally()), baseline,
                                   "day", TODAY, CONFIG, CONVENTIONS, NOW)
    alerts, _ = tallies.evaluate(NOW)
    assert alerts == expected
    assert tallies.folded + tallies.ignored == len(sent) + seed % (len(sent) + 1)


def test_a_drop_is_found_and_then_read_back_from_the_table_by_another_worker() -> None:
    shares = SegmentShares(SPEC, 3, PartialsIndex())
    store = table()
    tallies, sent = tallies_on({2}, store)
    for partition in range(4):
        for back, score in ((0, 3), (1, 7), (2, 7), (3, 7)):
            start = TODAY - back * DAY
            key = partial_key(partition, "segment", "day", start, "smb")
            for out in shares.outputs(partition, {key: {"tally": ces_tally([score] * 3),
                                                        "offset": 10 + back}}):
                assert tallies.fold(2, out.encode())
    [alert] = tallies.evaluate(NOW)[0]
    assert alert.segment == "smb" and alert.reason["current"] == 3.0
    assert alert.reason["baseline"] == 7.0 and alert.reason["current_n"] == 12
    asyncio.run(tallies.changelog.flush())
    assert {partition for partition, _ in sent} == {2}  # the shares topic's partition
    other, _ = tallies_on({2})
    other.load(store.data.items(), {2})
    assert other.evaluate(NOW)[0] == [alert]
    nobody, _ = tallies_on({1})
    nobody.load(store.data.items(), {1})
    assert nobody.evaluate(NOW)[0] == []  # not its segments


def test_windows_older_than_the_baselines_are_deleted_with_tombstones() -> None:
    shares = SegmentShares(SPEC, 3, PartialsIndex())
    store = table()
    tallies, sent = tallies_on({0}, store)
    for back in range(6):
        start = TODAY - back * DAY
        key = partial_key(1, "segment", "day", start, "smb")
        for out in shares.outputs(1, {key: {"tally": ces_tally([5]), "offset": back}}):
            tallies.fold(0, out.encode())
    asyncio.run(tallies.changelog.flush())
    assert asyncio.run(tallies.expire(NOW.timestamp())) == 2
    assert set(store.data) == {tally_key("smb", TODAY - back * DAY) for back in range(4)}
    assert [value for _, value in sent[-1][1]] == [None, None]
    assert json.loads(store.data[tally_key("smb", TODAY)])["shares"]["1"]["offset"] == 0


def test_a_recovered_partition_sends_its_evaluated_windows_again_once() -> None:
    index = PartialsIndex()
    value = {"tally": ces_tally([2]), "offset": 4}
    for back in range(6):
        index.put(partial_key(3, "segment", "day", TODAY - back * DAY, "smb"), value)
    index.put(partial_key(3, "channel", "day", TODAY, "web"), value)
    shares = SegmentShares(SPEC, 3, index)
    shares.to_resend |= {3, 1}
    again = shares.resend(NOW.timestamp(), {3})
    assert sorted(out.start for out in again) == [TODAY - back * DAY for back in (3, 2, 1, 0)]
    assert {(out.key, out.partition) for out in again} == {("smb", 3)}
    assert shares.resend(NOW.timestamp(), {3}) == []
