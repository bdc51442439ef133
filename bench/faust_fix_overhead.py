"""What four fixes of streams/faust_compat change per message: the seek guard (fix 4)
adds to each record Faust fetches; the unlocked conductor handler (fix 12), the delivery
in place (fix 13) and the batched ``take_events`` (fix 14) save.

Iterates Faust's own ``Consumer.getmany`` and the patched one over the same fetched
batch, on a stand-in consumer (no broker, so only the Python work is timed), and prints
microseconds per record for both and what the patch adds. Then hands the same number of
messages to the conductor's message handler, Faust's and the patched one, with a
callback that does nothing; makes as many of the consumer's ``wait_first`` calls that
hand a message over (a delivery that ends at once, raced against the flow's suspension);
and takes as many events through ``take_events`` batches of --batch-size from a channel a
task fills as the conductor does, on a Faust app without a broker. Compare the figures
with the full pipeline's time per event in bench/throughput.py.

    .venv/bin/python -m bench.faust_fix_overhead --records 200000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import faust
from faust.events import Event
from faust.transport.conductor import Conductor
from faust.transport.consumer import Consumer
from faust.types import TP
from faust.types.tuples import ConsumerMessage
from mode import Service

from cxstream.streams.kafka.faust_compat import fixes as faust_fixes
from cxstream.streams.kafka.lean_monitor import LeanMonitor
from testkit.support import fake_consumer


async def drain(records: Any) -> int:
    return sum([1 async for _ in records])


def best_seconds(getmany: Callable[..., Any], batch: dict[TP, list[int]], repeats: int
                 ) -> tuple[float, int]:
    """Fastest of ``repeats`` passes over the batch (the least disturbed by the machine)."""
    best, count = float("inf"), 0
    for _ in range(repeats):
        consumer = fake_consumer(batch, {})
        started = time.perf_counter()
        count = asyncio.run(drain(getmany(consumer, 1.0)))
        best = min(best, time.perf_counter() - started)
    return best, count


def handler_seconds(compile_handler: Callable[..., Any], messages: list[Any],
                    repeats: int) -> float:
    """Fastest of ``repeats`` passes handing every message to the conductor's handler."""
    async def nothing(message: Any) -> None:
        return None

    conductor = SimpleNamespace(app=SimpleNamespace(client_only=False),
                                _tp_to_callback={m.tp: nothing for m in messages},
                                _tp_to_callback_lock=asyncio.Lock())
    handler = compile_handler(conductor)

    async def deliver_all() -> float:
        started = time.perf_counter()
        for message in messages:
            await handler(message)
        return time.perf_counter() - started

    return min(asyncio.run(deliver_all()) for _ in range(repeats))


class Flowing(Service):
    """What Faust's consumer gives ``wait_first``: a service with a ``suspend_flow``."""

    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = asyncio.Event()


def wait_first_seconds(calls: int, repeats: int) -> float:
    """Fastest of ``repeats`` passes of ``calls`` hand-overs through
    ``Consumer.wait_first`` as ``_drain_messages`` makes them."""
    async def deliver() -> None:
        return None

    async def all_calls() -> float:
        consumer = Flowing()
        started = time.perf_counter()
        for _ in range(calls):
            await Consumer.wait_first(consumer, deliver(), consumer.suspend_flow.wait())
        return time.perf_counter() - started

    return min(asyncio.run(all_calls()) for _ in range(repeats))


def take_events_seconds(events: int, batch_size: int, repeats: int) -> float:
    """Fastest of ``repeats`` passes taking ``events`` events through ``take_events``
    batches, from a channel a task fills as the conductor does (awaiting room in the
    stream's buffer), each batch acknowledged; the worker's monitor as the sensor."""
    async def one_pass() -> float:
        app = faust.App("bench-take-events", broker="kafka://localhost:1",
                        autodiscover=False, Monitor=LeanMonitor)
        app.flow_control.resume()
        app.sensors.add(app.monitor)
        app.topics.acking_topics.add("in")
        channel = aiter(app.channel())
        stream: Any = app.stream(channel)  # faust.Stream: take_events is untyped
        generation = app.consumer_generation_id
        fill: list[Any] = []
        for offset in range(events):
            message = ConsumerMessage("in", offset % 4, offset, 0.0, 0, None, b"k", b"v",
                                      None, None, generation_id=generation)
            message.incref()
            fill.append(Event(app, b"k", b"v", {}, message))

        async def conductor() -> None:
            for event in fill:
                await channel.queue.put(event)

        started = time.perf_counter()
        filling = asyncio.ensure_future(conductor())
        taken = 0
        batches = stream.take_events(batch_size, within=0.5)
        async for batch in batches:
            taken += len(batch)
            if taken >= events:
                break
        await batches.aclose()  # the last batch acknowledged
        elapsed = time.perf_counter() - started
        await filling
        await stream.stop()
        return elapsed

    return min(asyncio.run(one_pass()) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    batch = {TP("in", p): list(range(args.records // args.partitions))
             for p in range(args.partitions)}
    messages = [SimpleNamespace(tp=TP("in", n % args.partitions), offset=n)
                for n in range(args.records)]
    faust_getmany = Consumer.getmany
    plain, count = best_seconds(faust_getmany, batch, args.repeats)
    locked = handler_seconds(Conductor._compile_message_handler, messages, args.repeats)
    raced = wait_first_seconds(args.records, args.repeats)
    faust_taken = take_events_seconds(args.records, args.batch_size, args.repeats)
    faust_fixes.apply()
    unlocked = handler_seconds(Conductor._compile_message_handler, messages, args.repeats)
    in_place = wait_first_seconds(args.records, args.repeats)
    batched = take_events_seconds(args.records, args.batch_size, args.repeats)
    patched, patched_count = best_seconds(Consumer.getmany, batch, args.repeats)
    assert patched_count == count, "the guard must deliver every record of a batch no seek touched"
    per = 1e6 / count
    print(f"{count:,} records in one batch, best of {args.repeats} passes")
    print(f"Faust's getmany:   {plain * per:.3f} µs per record")
    print(f"with the guard:    {patched * per:.3f} µs per record")
    print(f"added:             {(patched - plain) * per:.3f} µs per record "
          f"({patched / plain:.2f}x Faust's iteration of the batch)")
    per_message = 1e6 / len(messages)
    print(f"the conductor's handler, {len(messages):,} messages, best of {args.repeats}")
    print(f"Faust's (a lock per message): {locked * per_message:.3f} µs per message")
    print(f"unlocked while free (fix 12): {unlocked * per_message:.3f} µs per message "
          f"({locked / unlocked:.2f}x as fast)")
    print(f"the consumer's hand-over (wait_first), {args.records:,} calls, best of "
          f"{args.repeats}")
    print(f"Faust's (four tasks per call):  {raced * per_message:.3f} µs per call")
    print(f"in place while it need not wait (fix 13): {in_place * per_message:.3f} µs per "
          f"call ({raced / in_place:.2f}x as fast)")
    print(f"take_events, {args.records:,} events in batches of {args.batch_size}, best of "
          f"{args.repeats}")
    print(f"Faust's (a processor and a drain task): {faust_taken * per_message:.3f} µs per "
          f"event")
    print(f"from the queue in batches (fix 14): {batched * per_message:.3f} µs per event "
          f"({faust_taken / batched:.2f}x as fast)")


if __name__ == "__main__":
    main()
