"""Answers that need every partition: each worker adds up the partitions it owns, and the
worker asked gathers the other workers' shares over HTTP.

Shape: {"partitions": [owned partition numbers], ...data summed over them} per worker;
the union must cover every partition exactly once, else the answer is incomplete (a
rebalance is under way) and the caller says so (HTTP 503) rather than answer wrong.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from cxstream.scoring.group_answers import answers_key
from cxstream.scoring.partials_index import PartialsIndex
from cxstream.scoring.value_bands import ValueIndex
from cxstream.streams.kafka.agents import owned_partitions
from cxstream.streams.kafka.faust_compat.access import table_store

log = logging.getLogger(__name__)


class ClusterIncomplete(RuntimeError):
    """Some partitions have no active owner right now."""


class Cluster:
    """This worker's view of partition ownership and the other workers' addresses."""

    def __init__(self, app: Any, source_topic: str, partition_count: int,
                 partials: Any, value_index: ValueIndex, own_url: str,
                 token: str | None,
                 on_failure: Callable[[str], None] = lambda reason: None,
                 partials_index: PartialsIndex | None = None) -> None:
        self.on_failure = on_failure
        self.partials_index = partials_index or PartialsIndex()
        self.app = app
        self.source_topic = source_topic
        self.partition_count = partition_count
        self.partials = partials
        self.value_index = value_index
        self.own_url = own_url.rstrip("/")
        self.token = token

    def active_partitions(self) -> set[int]:
        return owned_partitions(self.app, self.source_topic)

    def worker_urls(self) -> list[str]:
        metadata = self.app.router.table_metadata(self.partials.name)
        urls = {str(url).rstrip("/") for url, topics in metadata.items()
                if any(topics.values())}
        return sorted(urls | {self.own_url})

    # -- local shares ------------------------------------------------------------------

    def local_partials(self, dimension: str, slices: set[tuple[str, int]] | None,
                       key: str | None, only: int | None = None,
                       prefix: str | None = None) -> dict[str, Any]:
        """Rows (window, start, key, tally) of ``dimension`` in ``slices`` (None: all) of the
        partitions this worker owns (only partition ``only`` if given: for diagnosis), from
        the partials index: a partition not read into it yet is not claimed."""
        owned = self.active_partitions() & self.partials_index.loaded
        if only is not None:
            owned &= {only}
        rows = self.partials_index.rows(dimension, slices, key, owned, prefix)
        return {"partitions": sorted(owned), "rows": rows}

    def local_answers(self, dimension: str, key: str) -> dict[str, Any]:
        """The recent answers of one group in the owned partitions read into the index
        (one read of the table per partition)."""
        owned = self.active_partitions() & self.partials_index.loaded
        store = table_store(self.partials)
        found: list[Any] = []
        for partition in sorted(owned):
            found += store.get(answers_key(partition, dimension, key).encode()) or ()
        return {"partitions": sorted(owned), "answers": found}

    def local_value_histograms(self) -> dict[str, Any]:
        """Value histograms per segment of the customers in owned partitions (only those
        read into the index: a partition still recovering is not claimed)."""
        owned = self.active_partitions() & self.value_index.indexed
        return {"partitions": sorted(owned), "segments": self.value_index.histograms(owned)}

    # -- gathering -----------------------------------------------------------------------

    async def gather(self, path: str, params: dict[str, str],
                     local: Callable[[], dict[str, Any]],
                     partition_count: int | None = None, method: str = "GET",
                     local_async: Callable[[], Awaitable[dict[str, Any]]] | None = None
                     ) -> list[dict[str, Any]]:
        """Every worker's share (this one's computed locally, by ``local`` or awaited
        from ``local_async``); raise if any is missing. ``partition_count``: of the topic
        the shares cover (default: the input topics); ``method``: POST for a share that
        changes something (an erasure's redaction)."""
        urls = [url for url in self.worker_urls() if url != self.own_url]
        shares = [await local_async() if local_async is not None else local()]
        if urls:
            shares += await asyncio.gather(*(self._fetch(url + path, params, method)
                                             for url in urls))
        seen: list[int] = [p for share in shares for p in share["partitions"]]
        expected = partition_count or self.partition_count
        if sorted(seen) != list(range(expected)):
            errors = "".join(f"; a worker answered: {share['error']}" for share in shares
                             if share.get("error"))
            raise ClusterIncomplete(
                f"partitions owned: {sorted(seen)} of {expected}; "
                f"a rebalance is under way, retry shortly{errors}")
        return shares

    async def _fetch(self, url: str, params: dict[str, str], method: str = "GET"
                     ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            async with httpx.AsyncClient(timeout=60 if method == "POST" else 10) as client:
                response = await client.request(method, url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("worker %s did not answer: %r", url, exc)
            self.on_failure("unreachable")
            return {"partitions": []}
        if response.status_code in (401, 403):
            log.error("worker %s refused this worker's API token (HTTP %d): every worker "
                      "needs the same CXSTREAM_API_TOKEN%s", url, response.status_code,
                      "" if self.token else ", and this one has none")
            self.on_failure("unauthorized")
            return {"partitions": []}
        if response.status_code != 200:
            log.warning("worker %s answered HTTP %d: %s", url, response.status_code,
                        response.text[:300])
            self.on_failure("error")
            return {"partitions": [], "error": _error_of(response)}
        share: dict[str, Any] = response.json()
        return share


def _error_of(response: httpx.Response) -> str | None:
    """The ``error`` of a worker's JSON error reply, if it is one."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return None if error is None else str(error)[:300]
