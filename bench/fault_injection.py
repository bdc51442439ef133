"""Fault injection, full size: ~100,000 events while the worker is SIGKILLed every 5-20 s.

Usage: .venv/bin/python -m bench.fault_injection [--events 100000] [--seed 11]
Starts its own Kafka broker on free loopback ports (jars from `cxstream broker fetch`),
prints what it checked, and exits 1 if anything was lost or duplicated.
"""

from __future__ import annotations

import argparse
import sys

from cxstream.cli.kafka import local_broker
from cxstream.cli.processes import free_port
from testkit.faults import run_fault_test
from testkit.support import base_env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    with local_broker.scratch_broker("cxstream-faults-") as (bootstrap, work):
        values = {"bootstrap_servers": bootstrap, "app_id": "cxstream-faults",
                  "partitions": "4", "data_dir": str(work / "worker"),
                  "web_port": str(free_port()),
                  "api_token": "fault-run-token-of-32-characters-or-more"}
        report = run_fault_test(values, base_env(), work, events=args.events,
                                seed=args.seed, timeout=1800)
    print(f"fault injection: {report.line()}")
    print(f"kills at (s): {report.kill_times}")
    return 0 if report.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
