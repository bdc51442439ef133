"""The partials index answers what a scan of the partials table would, after any writes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cxstream.scoring.fold import (
    expired_partial_keys,
    group_keys_key,
    partial_key,
    partial_slots,
    watermark_key,
)
from cxstream.scoring.partials_index import PartialsIndex
from cxstream.scoring.windows import Watermark, window_specs

WINDOWS = window_specs(7)
DAY = 86_400

keys = st.builds(partial_key, st.integers(0, 3), st.sampled_from(["segment", "channel"]),
                 st.sampled_from(["day", "7d", "gone"]),
                 st.integers(0, 9).map(lambda k: k * DAY), st.sampled_from(["a", "b", "c|d"]))
writes = st.lists(st.tuples(keys, st.one_of(st.none(), st.integers(0, 50))), max_size=60)


def scan_rows(table: dict[bytes, dict], dimension: str, slices: set | None, key: str | None,
              owned: set[int]) -> list[list]:
    return sorted(([slot.window, slot.start, slot.key, value["tally"]]
                   for slot, value in partial_slots(table.items(), owned)
                  if slot.dimension == dimension
                  and (slices is None or (slot.window, slot.start) in slices)
                   and (key is None or slot.key == key)), key=repr)


@settings(max_examples=200, deadline=None)
@given(before=writes, after=writes, owned=st.sets(st.integers(0, 3)),
       slices=st.one_of(st.none(), st.sets(st.tuples(st.sampled_from(["day", "7d"]),
                                                     st.integers(0, 9).map(lambda k: k * DAY)))),
       key=st.one_of(st.none(), st.sampled_from(["a", "c|d"])),
       watermark=st.integers(0, 20).map(lambda k: k * DAY))
def test_the_index_answers_as_a_scan_of_the_table(before, after, owned, slices, key,
                                                   watermark) -> None:
    table: dict[bytes, dict] = {watermark_key(0).encode(): {"at": 0},
                                group_keys_key(1, "segment").encode(): ["a"]}  # not tallies
    index = PartialsIndex()

    def write(raw: str, value: int | None) -> None:
        if value is None:
            table.pop(raw.encode(), None)
        else:
            table[raw.encode()] = {"tally": {"promoters": value}, "offset": value}
        index.put(raw, None if value is None else table[raw.encode()])

    for raw, value in before:  # written before a recovery: read from the table
        if value is None:
            table.pop(raw.encode(), None)
        else:
            table[raw.encode()] = {"tally": {"promoters": value}, "offset": value}
    index.load(table.items(), owned)
    for raw, value in after:  # then followed write by write
        write(raw, value)
    for dimension in ("segment", "channel"):
        assert sorted(index.rows(dimension, slices, key, {0, 1, 2, 3}), key=repr) == scan_rows(
            table, dimension, slices, key, owned)
    for partition in owned:
        mine = [slot.raw for slot, _ in partial_slots(table.items(), {partition})]
        assert sorted(index.expired(partition, watermark, WINDOWS)) == sorted(
            expired_partial_keys(mine, Watermark(at=watermark), WINDOWS))


def test_a_partition_not_loaded_is_not_answered_for() -> None:
    index = PartialsIndex()
    index.load([], {0})
    index.put(partial_key(1, "segment", "day", 0, "a"), {"tally": {}, "offset": 1})
    index.put(partial_key(0, "segment", "day", 0, "a"), {"tally": {"n": 1}, "offset": 1})
    assert index.rows("segment", None, None, {0, 1}) == [["day", 0, "a", {"n": 1}]]
    assert index.slice(1, "segment", "day", 0) == {"a": {"tally": {}, "offset": 1}}
