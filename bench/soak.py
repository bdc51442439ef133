"""The soak month: a month of simulated traffic at accelerated time through a worker on a
local broker, with a noisy customer, a destination down, another rate-limited, a support
team resolving alerts, and a SIGTERM or SIGKILL restart every 20-40 s (testkit/soak.py).

Usage: .venv/bin/python -m bench.soak [--customers 20000] [--days 30] [--per-day 20000]
       [--seed-cases 1000000] [--rate 400]
Starts its own Kafka broker on free loopback ports (jars from `cxstream broker fetch`),
prints the samples' figures and the checks, and exits 1 if anything was lost, doubled or
out of bounds. The figures depend on the machine; the checks do not.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from cxstream.cli.kafka import local_broker
from cxstream.cli.processes import free_port
from testkit.soak import SoakPlan, run_soak
from testkit.support import base_env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=20_000)
    parser.add_argument("--noisy", type=int, default=10_000)
    parser.add_argument("--restart-every", type=float, nargs=2, default=(20.0, 40.0))
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--seed-cases", type=int, default=0,
                        help="alert cases on the lifecycle topic before the start (5 %% "
                             "unresolved), e.g. 1000000")
    parser.add_argument("--rate", type=float, default=400.0, help="events sent per second")
    parser.add_argument("--worker-log", type=Path, default=None,
                        help="keep the worker's log there (the broker's folder is removed)")
    args = parser.parse_args()
    plan = SoakPlan(customers=args.customers, days=args.days, per_day=args.per_day,
                    noisy_failures=args.noisy, restart_every=tuple(args.restart_every),
                    seed=args.seed, seed_cases=args.seed_cases, rate=args.rate)
    with local_broker.scratch_broker("cxstream-soak-") as (bootstrap, work):
        values = {"bootstrap_servers": bootstrap, "app_id": "cxstream-soak",
                  "data_dir": str(work / "worker"), "web_port": str(free_port())}
        try:
            report = run_soak(values, base_env(), work, plan, timeout=4 * 3_600)
        finally:
            if args.worker_log is not None:
                shutil.copyfile(work / "worker.log", args.worker_log)
    print(f"soak: {plan}")
    for line in report.lines():
        print(f"  {line}")
    print(f"  {report.seconds:.0f} s; {'ok' if report.ok() else 'FAILED'}")
    return 0 if report.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
