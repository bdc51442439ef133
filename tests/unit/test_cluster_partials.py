"""A worker's own share of the group tallies, as /internal/partials serves it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from faust.types import TP

from cxstream.scoring.partials_index import PartialsIndex
from cxstream.scoring.value_bands import ValueIndex
from cxstream.streams.groups.cluster import Cluster
from cxstream.streams.web.errors import BadRequest
from cxstream.streams.web.queries import parse_partition


def cluster_owning(partitions: set[int], partials: dict[bytes, dict]) -> Cluster:
    assignor = SimpleNamespace(assigned_actives=lambda: {TP("fb", p) for p in partitions})
    index = PartialsIndex()
    index.load(partials.items(), partitions)
    return Cluster(SimpleNamespace(assignor=assignor), "fb", 4, partials, ValueIndex(),
                   "http://me", None, partials_index=index)


def test_rows_come_from_owned_partitions_and_one_partition_can_be_asked_for() -> None:
    tally = {"promoters": 1}
    partials = {f"{p}|channel|7d|100|web".encode(): {"tally": tally, "offset": 1}
                for p in range(4)}
    partials[b"0|~watermark"] = {"at": 0}
    cluster = cluster_owning({0, 2}, partials)
    assert cluster.local_partials("channel", None, "web") == {
        "partitions": [0, 2], "rows": [["7d", 100, "web", tally]] * 2}
    assert cluster.local_partials("channel", None, "web", only=2) == {
        "partitions": [2], "rows": [["7d", 100, "web", tally]]}
    assert cluster.local_partials("channel", None, "web", only=1) == {
        "partitions": [], "rows": []}  # not this worker's


def test_a_partition_number_is_a_whole_number() -> None:
    assert parse_partition("3") == 3
    for bad in ("-1", "x", ""):
        with pytest.raises(BadRequest, match="partition"):
            parse_partition(bad)


async def test_a_worker_refusing_the_token_is_an_error_and_a_metric_not_a_silent_gap(
        caplog: pytest.LogCaptureFixture) -> None:
    from aiohttp import web

    from cxstream.streams.groups.cluster import ClusterIncomplete
    from testkit.support import local_server

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error": "missing or wrong bearer token"}, status=401)

    runner, port = await local_server("GET", "/internal/value-histograms", refuse)
    failures: list[str] = []
    try:
        assignor = SimpleNamespace(assigned_actives=lambda: {TP("fb", 0), TP("fb", 1)})
        router = SimpleNamespace(table_metadata=lambda name: {
            f"http://127.0.0.1:{port}": {"fb": {2, 3}}})
        cluster = Cluster(SimpleNamespace(assignor=assignor, router=router), "fb", 4,
                          SimpleNamespace(name="partials"), ValueIndex(), "http://me", None,
                          failures.append)
        with pytest.raises(ClusterIncomplete):
            await cluster.gather("/internal/value-histograms", {},
                                 cluster.local_value_histograms)
    finally:
        await runner.cleanup()
    assert failures == ["unauthorized"]
    assert any("CXSTREAM_API_TOKEN" in r.message and r.levelname == "ERROR"
               for r in caplog.records)


def test_one_scan_of_the_partials_table_skips_bookkeeping_and_other_partitions() -> None:
    from cxstream.scoring.fold import group_keys_key, partial_key, partial_slots, watermark_key

    items = [(partial_key(0, "segment", "day", 100, "smb").encode(), {"n": 1}),
             (partial_key(1, "channel", "hour", 200, "web|app").encode(), {"n": 2}),
             (watermark_key(0).encode(), {"at": 5}),
             (group_keys_key(1, "segment").encode(), ["smb"])]
    every = [(slot.partition, slot.dimension, slot.window, slot.start, slot.key, value)
             for slot, value in partial_slots(items)]
    assert every == [(0, "segment", "day", 100, "smb", {"n": 1}),
                     (1, "channel", "hour", 200, "web|app", {"n": 2})]
    assert [slot.raw for slot, _ in partial_slots(items, {1})] == [
        partial_key(1, "channel", "hour", 200, "web|app")]
