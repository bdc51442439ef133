"""The API's answers about group scores: rankings, one group, its drivers, the answers
behind it and the raw tallies, each gathered from every worker's partitions
(groups.cluster). Part of web.worker_api.WorkerApi."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from cxstream.scoring import group_answers as ga
from cxstream.scoring.drivers import Metric, drivers_of_groups, drivers_report, summary
from cxstream.scoring.fold import FoldRules
from cxstream.scoring.groups import part_dimension, part_key
from cxstream.scoring.reports import (
    current_and_previous,
    group_report,
    merge_rows,
    ranking,
    trend,
)
from cxstream.scoring.windows import window_start
from cxstream.streams.groups.cluster import Cluster
from cxstream.streams.services import WorkerServices
from cxstream.streams.users import Principal
from cxstream.streams.web import queries as q
from cxstream.streams.web.errors import BadRequest, Forbidden

Query = Mapping[str, str]


class ScoreQueries:
    """The score calls of WorkerApi (which sets these attributes)."""

    services: WorkerServices
    cluster: Cluster
    rules: FoldRules

    async def _gathered(self, dimension: str, slices: set[tuple[str, int]] | None,
                        key: str | None, prefix: str | None = None) -> Any:
        joined = "all" if slices is None else ",".join(f"{w}:{s}" for w, s in sorted(slices))
        params = {"dimension": dimension, "slices": joined}
        if key is not None:
            params["key"] = key
        if prefix is not None:
            params["prefix"] = prefix
        shares = await self.cluster.gather(
            "/internal/partials", params,
            lambda: self.cluster.local_partials(dimension, slices, key, prefix=prefix))
        return merge_rows(tuple(row) for share in shares for row in share["rows"])

    async def ranking(self, principal: Principal, dimension: str, query: Query
                      ) -> dict[str, Any]:
        """Groups of a dimension ranked by a metric in one window."""
        q.check_dimension(dimension, principal)
        spec = q.pick_window(self.rules.windows, query.get("window", "day"))
        metric = query.get("metric", "nps")
        if metric not in q.METRICS:
            raise BadRequest(f"metric: one of {', '.join(q.METRICS)}, not {metric!r}")
        current, previous = current_and_previous(spec, q.parse_at(query.get("at"), q.now))
        which = query.get("which", "current")
        if which not in {"current", "previous"}:
            raise BadRequest(f"which: current or previous, not {which!r}")
        min_n = q.parse_count(query.get("min_n", "1"))
        why_hidden = None
        least = self.services.settings.agent_min_answers
        if dimension == "agent" and min_n < least:  # fairness: never fewer
            min_n = least
            why_hidden = (f"agents are ranked from {least} {metric} answers "
                          "(CXSTREAM_AGENT_MIN_ANSWERS)")
        start = current if which == "current" else previous
        tallies = await self._gathered(
            dimension, {(spec.name, start), (spec.name, start - spec.seconds)}, None)
        return ranking(dimension, spec, start, metric, min_n, tallies, self.rules.conventions,
                       self.rules.journey.order() if dimension == "stage" else None,
                       why_hidden)

    async def group(self, principal: Principal, dimension: str, key: str, query: Query
                    ) -> dict[str, Any]:
        """One group's scores in every window, current and previous."""
        q.check_dimension(dimension, principal)
        at = q.parse_at(query.get("at"), q.now)
        slices = {(spec.name, start) for spec in self.rules.windows
                  for start in current_and_previous(spec, at)}
        tallies = await self._gathered(dimension, slices, key)
        return group_report(dimension, key, self.rules.windows, at, tallies,
                            self.rules.conventions)

    async def drivers(self, principal: Principal, dimension: str, key: str, query: Query
                      ) -> dict[str, Any]:
        """What moved a group's scores between the previous window and the current one,
        part by part (scoring.drivers)."""
        q.check_dimension(dimension, principal)
        by, spec, at = q.drivers_query(query, dimension, self.rules.windows)
        current, previous = current_and_previous(spec, at)
        tallies = await self._gathered(part_dimension(dimension, by),
                                       {(spec.name, current), (spec.name, previous)}, None,
                                       part_key(key, ""))
        settings = self.services.files.rules.drivers
        return drivers_report(dimension, key, by, spec, (previous, current), tallies,
                              self.rules.conventions, settings.min_answers, settings.named)

    async def drivers_of_dimension(self, principal: Principal, dimension: str, metric: str
                                   ) -> dict[str, Any]:
        """The drivers of the latest change of ``metric`` of every group of a dimension
        (day window, by its first part dimension), for the scores page: one request for
        the part tallies of two windows, bounded by the part keys' cap."""
        q.check_dimension(dimension, principal)
        if metric not in q.METRICS:
            raise BadRequest(f"metric: one of {', '.join(q.METRICS)}, not {metric!r}")
        by, spec, at = q.drivers_query({}, dimension, self.rules.windows)
        current, previous = current_and_previous(spec, at)
        tallies = await self._gathered(part_dimension(dimension, by),
                                       {(spec.name, current), (spec.name, previous)}, None)
        settings = self.services.files.rules.drivers
        found = drivers_of_groups(cast(Metric, metric), spec, (previous, current), tallies,
                                  self.rules.conventions, settings.min_answers)
        return {"by": by, "window": spec.name, "min_answers": settings.min_answers,
                "groups": {group: {"change": split.change, "summary": summary(split, 3),
                                   "drivers": split.drivers[:3]}
                           for group, split in found.items()}}

    async def trend(self, principal: Principal, dimension: str, key: str | None,
                    query: Query) -> dict[str, Any]:
        """A group's score per day (``key`` None: every group of the dimension, for the
        scores page), oldest first."""
        q.check_dimension(dimension, principal)
        metric, days, at = q.trend_query(query)
        spec = q.pick_window(self.rules.windows, "day")
        current = window_start(at.timestamp(), spec.seconds)
        starts = [current - back * spec.seconds for back in range(days - 1, -1, -1)]
        tallies = await self._gathered(dimension, {(spec.name, s) for s in starts}, key)
        keys = [key] if key is not None else sorted({group for _, _, group in tallies})
        return {"dimension": dimension, "metric": metric, "window": spec.name,
                "groups": {group: trend(tallies, spec, starts, group, metric,
                                        self.rules.conventions) for group in keys}}

    async def group_answers(self, principal: Principal, dimension: str, key: str,
                            query: Query) -> dict[str, Any]:
        """The recent answers that make a group's scores, newest first, with comments."""
        if not principal.sees_all:  # they name customers and quote them
            raise Forbidden("the answers behind a group are for leads, admins and the "
                            "shared API token")
        q.check_dimension(dimension)
        survey, since, limit, comments_only = q.answers_query(query, self.rules.windows)
        shares = await self.cluster.gather(
            "/internal/group-answers", {"dimension": dimension, "key": key},
            lambda: self.cluster.local_answers(dimension, key))
        since_us = None if since is None else int(since * 1_000_000)
        found = [answer for share in shares for answer in share["answers"]
                 if (survey is None or answer[ga.SURVEY] == survey)
                 and (since_us is None or answer[ga.AT] >= since_us)
                 and (not comments_only or answer[ga.COMMENT])]
        found.sort(key=lambda answer: (answer[ga.AT], answer[ga.EVENT_ID]), reverse=True)
        return {"dimension": dimension, "key": key, "total": len(found),
                "kept_per_partition": self.rules.state.group_answers_kept,
                "answers": [ga.answer_report(answer) for answer in found[:limit]]}

    def answers_share(self, query: Query) -> dict[str, Any]:
        """This worker's recent answers of one group (internal)."""
        dimension = query.get("dimension", "")
        q.check_dimension(dimension)
        return self.cluster.local_answers(dimension, query.get("key", ""))

    async def tallies(self, principal: Principal, dimension: str) -> dict[str, Any]:
        if not principal.sees_all:
            raise Forbidden("the raw tallies are for leads, admins and the shared API token")
        q.check_tally_dimension(dimension)  # the groups' parts too (cxstream recompute)
        tallies = await self._gathered(dimension, None, None)
        return {"dimension": dimension, "tallies": [
            {"window": window, "start": start, "key": key, **tally.model_dump()}
            for (window, start, key), tally in sorted(tallies.items())]}

    def value_bands(self) -> dict[str, Any]:
        described: dict[str, Any] = self.services.core.bands.current.describe()
        return described

    def partials_share(self, query: Query) -> dict[str, Any]:
        """This worker's partial tallies (internal)."""
        dimension = query.get("dimension", "")
        q.check_tally_dimension(dimension)
        slices = q.parse_slices(query.get("slices", "all"))
        only = query.get("partition")
        return self.cluster.local_partials(dimension, slices, query.get("key"),
                                           None if only is None else q.parse_partition(only),
                                           query.get("prefix"))

    def value_histograms_share(self) -> dict[str, Any]:
        return self.cluster.local_value_histograms()

