"""The high-value band: histogram buckets and the top-share threshold's error bound."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxstream.scoring.value_bands import (
    GROWTH,
    ValueBands,
    ValueIndex,
    bucket_of,
    histogram_of,
    lower_edge,
    merge,
    top_share_threshold,
)


@given(st.floats(0, 1e12))
def test_every_value_lies_in_its_bucket(value: float) -> None:
    bucket = bucket_of(value)
    assert lower_edge(bucket) <= value
    if bucket > 0:
        assert value < lower_edge(bucket + 1)


def exact_threshold(values: list[float], share: float) -> float:
    return sorted(values, reverse=True)[max(1, math.ceil(share * len(values))) - 1]


@given(st.lists(st.floats(0, 1e9), min_size=1, max_size=400),
       st.sampled_from([0.05, 0.2, 0.5]))
def test_threshold_is_never_above_the_exact_one_and_less_than_1_percent_below(
    values: list[float], share: float
) -> None:
    estimate = top_share_threshold(histogram_of(values), share)
    exact = exact_threshold(values, share)
    assert estimate is not None
    assert estimate <= exact
    if exact >= 1:
        assert estimate > exact / GROWTH
    # nobody at or above the exact threshold is missed
    assert all(value >= estimate for value in values if value >= exact)


def test_top_20_percent_of_a_long_tail() -> None:
    values = [10.0] * 80 + [1_000.0] * 15 + [100_000.0] * 5
    assert top_share_threshold(histogram_of(values), 0.2) == pytest.approx(1_000, rel=0.01)


def test_empty_histogram_has_no_threshold() -> None:
    assert top_share_threshold({}, 0.2) is None


def test_a_segment_smaller_than_the_minimum_has_no_high_value_band() -> None:
    """The only customer of a new segment is not its top 20 %: by default a band needs
    1 / share customers (5 for 20 %), then holds ceil(share * n) of them."""
    from cxstream.streams.settings import load_settings

    assert load_settings({}).band_min_customers == 5
    assert load_settings({}, high_value_share="0.3").band_min_customers == 4
    assert load_settings({}, high_value_min_customers="1").band_min_customers == 1
    assert top_share_threshold(histogram_of([1_840.0]), 0.2, 5) is None
    assert top_share_threshold(histogram_of([10.0, 20.0, 30.0, 40.0]), 0.2, 5) is None
    five = top_share_threshold(histogram_of([10.0, 20.0, 30.0, 40.0, 5_000.0]), 0.2, 5)
    assert five is not None and 40.0 < five <= 5_000.0
    assert top_share_threshold(histogram_of([1_840.0]), 0.2) is not None  # minimum 1


def test_merging_histograms_adds_counts_including_json_string_buckets() -> None:
    assert merge([{1: 2}, {"1": 3, "5": 1}]) == {1: 5, 5: 1}  # type: ignore[dict-item]


def test_bands_flag_overall_and_in_segment_and_a_fixed_threshold_wins() -> None:
    histograms = {"smb": histogram_of([10, 20, 30, 40, 50]),
                  "enterprise": histogram_of([1_000, 2_000, 3_000, 4_000, 5_000])}
    bands = ValueBands(histograms, 0.2)
    assert bands.flags("smb", 50) == {"overall": False, "in_segment": True, "high_value": True}
    assert bands.flags("enterprise", 4_500)["overall"] is True
    overall = ValueBands(histograms, 0.2, scope="overall")
    assert overall.flags("smb", 50)["high_value"] is False
    fixed = ValueBands(histograms, 0.2, fixed_threshold=25)
    assert fixed.flags("smb", 30)["high_value"] is True
    assert ValueBands({}, 0.2).flags("smb", 1)["high_value"] is None


def test_value_index_moves_a_customer_between_buckets_and_segments() -> None:
    from cxstream.scoring.value_bands import ValueIndex

    index = ValueIndex()
    index.update(0, "a", "smb", 100)
    index.update(0, "b", "smb", 100)
    index.update(1, "c", "enterprise", 5_000)
    index.update(0, "a", "enterprise", 7_000)  # re-segmented and re-valued
    index.update(0, "a", "enterprise", 7_000)  # same again: no change
    assert index.histograms({0, 1}) == {"smb": histogram_of([100]),
                                        "enterprise": histogram_of([7_000, 5_000])}
    assert index.histograms({1}) == {"enterprise": histogram_of([5_000])}
    index.keep_only({1})
    assert index.histograms({0, 1}) == {"enterprise": histogram_of([5_000])}


@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["a", "b", "c", "d", "e", "f"]),
                          st.sampled_from(["smb", "enterprise"]),
                          st.floats(0, 1e6, allow_nan=False),
                          st.sampled_from([True, False, None])), max_size=30),
       st.sampled_from(["segment", "overall"]), st.sampled_from([None, 500.0]))
def test_quadrant_counts_match_each_customers_flags(
    updates: list[tuple[int, str, str, float, bool | None]], scope: str,
    fixed: float | None,
) -> None:
    from cxstream.scoring.value_bands import ValueIndex, quadrant_name

    index = ValueIndex()
    latest: dict[tuple[int, str], tuple[str, float, bool | None]] = {}
    for partition, customer, segment, value, low in updates:
        index.update(partition, customer, segment, value, low)
        latest[(partition, customer)] = (segment, value, low)
    bands = ValueBands(index.histograms({0, 1, 2, 3}), 0.2, scope, fixed)
    expected: dict[tuple[str, str], int] = {}
    for (partition, _), (segment, value, low) in latest.items():
        if partition in {0, 1}:
            key = (segment, quadrant_name(bands.flags(segment, value)["high_value"], low))
            expected[key] = expected.get(key, 0) + 1
    assert index.quadrant_counts({0, 1}, bands) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["update", "forget", "keep_only"]),
                          st.integers(0, 3), st.integers(0, 9),
                          st.sampled_from(["smb", "enterprise"]),
                          st.floats(0, 1e6, allow_nan=False)), max_size=60),
       st.sets(st.integers(0, 3)))
def test_the_histograms_kept_added_up_equal_the_partitions_merged(
        steps: list[tuple[str, int, int, str, float]], asked: set[int]) -> None:
    index = ValueIndex()
    for action, partition, customer, segment, value in steps:
        if action == "update":
            index.update(partition, f"c{customer}", segment, value)
        elif action == "forget":
            index.forget(partition, f"c{customer}")
        else:
            index.keep_only({p for p in range(4) if p != partition})
    for partitions in ({0, 1, 2, 3}, asked):
        expected: dict[str, dict[int, int]] = {}
        for partition in partitions:
            for segment, value in index._customers.get(partition, {}).values():
                counts = expected.setdefault(segment, {})
                counts[bucket_of(value)] = counts.get(bucket_of(value), 0) + 1
        assert index.histograms(partitions) == expected


def test_bands_take_other_workers_shares_with_text_buckets_for_segments_held_here_or_not(
        ) -> None:
    """A share gathered over HTTP has JSON keys (text): bands read them as numbers,
    whether the segment has customers here too or only there."""
    from cxstream.streams.customers.band_refresh import BandsHolder

    index = ValueIndex()
    index.update(0, "c1", "smb", 100.0)
    index.mark_indexed({0})
    bands = BandsHolder(0.5, "segment", None, index, lambda: {0}, 2)
    remote = {str(bucket): count for bucket, count in histogram_of([1e6, 2e6]).items()}
    bands.remote = [{"partitions": [1], "segments": {"enterprise": remote, "smb": remote}}]
    bands._remote_version += 1
    current = bands.current
    assert current.threshold("enterprise") == lower_edge(bucket_of(2e6))
    assert current.threshold("smb") == lower_edge(bucket_of(1e6))
    assert bands.complete


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.tuples(st.integers(0, 3), st.integers(0, 30)),
                       st.tuples(st.sampled_from(["smb", "enterprise"]),
                                 st.floats(0, 1e6, allow_nan=False),
                                 st.sampled_from([True, False, None])), max_size=60),
       st.sets(st.integers(0, 3)), st.floats(0, 1e6, allow_nan=False))
def test_a_bulk_fill_gives_the_index_that_one_update_per_customer_gives(
        customers: dict[tuple[int, int], tuple[str, float, bool | None]], asked: set[int],
        threshold: float) -> None:
    from cxstream.scoring.value_bands import ValueBands

    one_by_one, bulk = ValueIndex(), ValueIndex()
    rows = [(partition, f"c{partition}-{n}", segment, value, low)  # an id lives in one
            for (partition, n), (segment, value, low) in customers.items()]
    for row in rows:
        one_by_one.update(*row)
    assert bulk.fill(rows) == len(rows)
    # and what a restart takes from the snapshots: each partition's rows and histograms
    saved = ValueIndex()
    assert sum(saved.fill_saved(partition, one_by_one.rows(partition),
                                one_by_one.histograms_of(partition))
               for partition in range(4)) + saved.fill([]) == len(rows)
    for other in (bulk, saved):
        for partitions in ({0, 1, 2, 3}, asked):
            assert other.histograms(partitions) == one_by_one.histograms(partitions)
            assert other.overall(partitions) == one_by_one.overall(partitions)
        bands = ValueBands(other.histograms({0, 1, 2, 3}), 0.2)
        assert other.quadrant_counts(asked, bands) == one_by_one.quadrant_counts(asked, bands)
        lower = ValueBands({}, 0.2, fixed_threshold=threshold)
        assert other.newly_high(bands, lower, asked) == one_by_one.newly_high(bands, lower,
                                                                               asked)
        assert sorted(other.rows(1)) == sorted(one_by_one.rows(1))
