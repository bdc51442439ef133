"""What the seek guard of streams/faust_compat/fixes.py (fix 4) adds per record Faust fetches.

Iterates Faust's own ``Consumer.getmany`` and the patched one over the same fetched
batch, on a stand-in consumer (no broker, so only the Python work is timed), and prints
microseconds per record for both and what the patch adds. Compare the added time with the
full pipeline's time per event in bench/throughput.py.

    .venv/bin/python -m bench.faust_fix_overhead --records 200000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    batch = {TP("in", p): list(range(args.records // args.partitions))
             for p in range(args.partitions)}
    faust_getmany = Consumer.getmany
    plain, count = best_seconds(faust_getmany, batch, args.repeats)
    faust_fixes.apply()
    patched, patched_count = best_seconds(Consumer.getmany, batch, args.repeats)
    assert patched_count == count, "the guard must deliver every record of a batch no seek touched"
    per = 1e6 / count
    print(f"{count:,} records in one batch, best of {args.repeats} passes")
    print(f"Faust's getmany:   {plain * per:.3f} µs per record")
    print(f"with the guard:    {patched * per:.3f} µs per record")
    print(f"added:             {(patched - plain) * per:.3f} µs per record "
          f"({patched / plain:.2f}x Faust's iteration of the batch)")


if __name__ == "__main__":
    main()
