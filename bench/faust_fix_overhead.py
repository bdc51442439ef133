"""What two fixes of streams/faust_compat/fixes.py change per message: the seek guard
(fix 4) adds to each record Faust fetches, the unlocked conductor handler (fix 12) saves.

Iterates Faust's own ``Consumer.getmany`` and the patched one over the same fetched
batch, on a stand-in consumer (no broker, so only the Python work is timed), and prints
microseconds per record for both and what the patch adds. Then hands the same number of
messages to the conductor's message handler, Faust's and the patched one, with a
callback that does nothing. Compare the figures with the full pipeline's time per event
in bench/throughput.py.

    .venv/bin/python -m bench.faust_fix_overhead --records 200000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from faust.transport.conductor import Conductor
from faust.transport.consumer import Consumer
from faust.types import TP

from cxstream.streams.faust_compat import fixes as faust_fixes
from tests.support import fake_consumer


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    batch = {TP("in", p): list(range(args.records // args.partitions))
             for p in range(args.partitions)}
    messages = [SimpleNamespace(tp=TP("in", n % args.partitions), offset=n)
                for n in range(args.records)]
    faust_getmany = Consumer.getmany
    plain, count = best_seconds(faust_getmany, batch, args.repeats)
    locked = handler_seconds(Conductor._compile_message_handler, messages, args.repeats)
    faust_fixes.apply()
    unlocked = handler_seconds(Conductor._compile_message_handler, messages, args.repeats)
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


if __name__ == "__main__":
    main()
