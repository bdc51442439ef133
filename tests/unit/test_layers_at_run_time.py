"""No lower layer calls a higher one at run time, as import-linter shows it does not in
the imports: every Python call made while the worker's core (streams.core.build_core)
folds simulated batches is recorded, and none goes from a module of a layer to a
function written in a higher layer (a callback or a lambda handed down counts as the
higher layer's code)."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from cxstream.alerts.reactions import AlertOut, SignalOut
from cxstream.cli.simulator.generator import SimConfig, simulate
from cxstream.streams.customers.survey_desk import SurveyOut
from cxstream.streams.ingest.batches import Ingest, IngestLimits
from cxstream.streams.kafka.changelog import BulkChangelog
from cxstream.streams.metrics import OWN_WORK_STAGES
from cxstream.streams.settings import Settings
from testkit.in_process import in_process_core, in_process_messages
from testkit.support import flat_model_file

#: highest first, as in pyproject.toml's import-linter contract
LAYERS = ("cli", "streams", "alerts", "scoring", "schemas")


def layer_of(filename: str) -> int | None:
    """The layer's rank (0: highest) of a file of the package, None outside it."""
    marker = "/cxstream/"
    if marker not in filename:
        return None
    part = filename.rsplit(marker, 1)[1].split("/", 1)[0]
    return LAYERS.index(part) if part in LAYERS else None


class NoDeadLetters:
    """The simulated events are all valid (no malformed share)."""

    async def write(self, topic: str, partition: int, rejected: Any) -> list[int]:
        raise AssertionError(f"dead-lettered: {rejected}")


def test_a_batch_calls_no_function_of_a_higher_layer(tmp_path: Path) -> None:
    # with a prediction model, so that the predict stage runs too
    settings = Settings(bootstrap_servers="localhost:1",
                        model_file=flat_model_file(tmp_path / "model.json"))
    outputs: list[Any] = []

    async def keep(batch: list[Any]) -> None:
        outputs.extend(batch)

    async def send(topic: str, partition: int, records: list[Any]) -> None:
        pass  # the changelog records: encoded, then dropped

    core = in_process_core(settings, keep, BulkChangelog(send))  # build_core, 4 partitions
    ingest = Ingest(settings.input_kinds(),
                    IngestLimits(settings.max_event_bytes, None, settings.max_clock_skew_seconds),
                    core.writer.metrics, NoDeadLetters(), core.writer.handle,
                    core.writer.finish)
    records = list(simulate(SimConfig(customers=200, rate=20, duration=300, history_days=0,
                                      malformed_share=0.0, daily_rhythm=False),
                            datetime.now(UTC)).records())
    events = in_process_messages(settings, records, {})
    batches = [events[start:start + 100] for start in range(0, len(events), 100)]

    upward: Counter[str] = Counter()

    def record(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call" or frame.f_back is None:
            return
        callee = layer_of(frame.f_code.co_filename)
        caller = layer_of(frame.f_back.f_code.co_filename)
        if callee is not None and caller is not None and callee < caller:
            upward[f"{frame.f_back.f_code.co_qualname} -> "
                   f"{frame.f_code.co_filename.rsplit('/cxstream/', 1)[1]}:"
                   f"{frame.f_code.co_qualname}"] += 1

    async def run() -> None:
        for accepted in batches:
            sys.setprofile(record)
            try:
                await ingest.process(accepted)
            finally:
                sys.setprofile(None)

    asyncio.run(run())
    # the batches did what the layers are asked about: alerts, signals, surveys
    assert any(isinstance(output, AlertOut) for output in outputs)
    assert any(isinstance(output, SignalOut) for output in outputs)
    assert any(isinstance(output, SurveyOut) for output in outputs)
    assert core.priorities is not None and core.priorities.counts
    registry = core.writer.metrics.registry  # and every stage of the own work was timed
    assert {stage: (registry.get_sample_value("cxstream_own_work_seconds_total",
                                              {"stage": stage}) or 0.0) > 0
            for stage in OWN_WORK_STAGES} == dict.fromkeys(OWN_WORK_STAGES, True)
    assert upward == {}, "calls from a lower layer into a higher one:\n" + "\n".join(
        f"{count} x {call}" for call, count in upward.most_common())
