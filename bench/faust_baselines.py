"""The Faust baselines of bench/throughput.py, run as their own worker process.

    python -m bench.faust_baselines bare|batched|batched-lean|batched-fixed|naive COUNT
    (settings from CXSTREAM_*)

- bare: an agent that reads the input events one by one and does nothing else (Faust's
  own cost per event: the ceiling for any Faust agent);
- batched: the same over ``take_events`` batches of CXSTREAM_BATCH_SIZE within
  CXSTREAM_BATCH_TIMEOUT_SECONDS, as the pipeline reads them (the ceiling of its design);
- batched-lean: batched with the worker's monitor (streams.kafka.lean_monitor), which keeps
  only the offsets the worker reads instead of Faust's statistics per event;
- batched-fixed: batched-lean with cxstream's fixes to Faust applied, as the worker runs
  them (streams/faust_compat: among them the two that take work off each message, a
  lock and four tasks, and the seek guard that adds some);
- naive: what a typical first version does: per event, validate it with the same pydantic
  models and write the customer's running state to a table (one changelog write per event).

Both run on the worker's event loop (CXSTREAM_EVENT_LOOP, uvloop by default) and without
Faust's terminal spinner, as a `cxstream worker` does, so the ratios compare work, not
set-up. Prints one JSON line when COUNT events have been seen: {"mode", "count", "seconds"}, the
time from the first event to the last; then exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import faust
import uvloop

from cxstream.schemas.events import Feedback
from cxstream.schemas.parsing import InputKind, Rejection, parse_input
from cxstream.streams.kafka.lean_monitor import LeanMonitor
from cxstream.streams.settings import load_settings


def main() -> None:
    mode, count = sys.argv[1], int(sys.argv[2])
    settings = load_settings(os.environ)
    if settings.event_loop == "uvloop":  # the same event loop as the pipeline's worker
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        asyncio.set_event_loop(asyncio.new_event_loop())
    lean: dict[str, Any] = ({"Monitor": LeanMonitor} if mode in ("batched-lean", "batched-fixed")
                            else {})  # Faust settings, given as keywords
    if mode == "batched-fixed":
        from cxstream.streams.kafka import faust_compat

        faust_compat.install()
    app = faust.App(
        settings.app_id, broker=f"kafka://{settings.bootstrap_servers}", store="memory://",
        datadir=str(settings.data_dir), topic_partitions=settings.partitions,
        topic_disable_leader=True, consumer_auto_offset_reset="earliest", web_enabled=False,
        key_serializer="raw", value_serializer="raw", autodiscover=False, **lean,
    )
    topic = app.topic(*settings.input_topics, key_serializer="raw", value_serializer="raw")
    kinds = {settings.topic_interactions: InputKind.INTERACTION,
             settings.topic_feedback: InputKind.FEEDBACK,
             settings.topic_customers: InputKind.CUSTOMER}
    states = app.Table("naive_state", partitions=settings.partitions, key_type=bytes,
                       value_type=bytes)
    seen = {"n": 0, "first": 0.0}

    def tick() -> None:
        if seen["n"] == 0:
            seen["first"] = time.monotonic()
        seen["n"] += 1
        if seen["n"] == count:
            print(json.dumps({"mode": mode, "count": count,
                              "seconds": time.monotonic() - seen["first"]}), flush=True)
            os._exit(0)  # the measurement is done; skip Faust's shutdown

    @app.agent(topic, concurrency=1)
    async def consume(stream: Any) -> None:
        if mode == "bare":
            async for _ in stream.events():
                tick()
            return
        if mode in ("batched", "batched-lean", "batched-fixed"):
            async for batch in stream.take_events(settings.batch_size,
                                                  within=settings.batch_timeout_seconds):
                for _ in batch:
                    tick()
            return
        async for event in stream.events():
            parsed = parse_input(kinds[event.message.topic], event.key, event.value,
                                 settings.max_event_bytes)
            if not isinstance(parsed, Rejection):
                key = parsed.customer_id.encode()
                state = json.loads(states.get(key) or b'{"events": 0}')
                state["events"] += 1
                if isinstance(parsed, Feedback):
                    state[parsed.survey] = parsed.score
                states[key] = json.dumps(state).encode()
            tick()

    worker = faust.Worker(app, loglevel="warning", quiet=True)
    # as in `cxstream worker`: Faust's spinner would turn the root logger to DEBUG at level
    # warning, and every debug call of Faust and aiokafka would then build a log record
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
