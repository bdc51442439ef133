"""Start a worker process: check the environment, create topics, run the Faust app."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import gc
import io
import logging
import os
import signal
import socket
import threading
from typing import Any

import filelock
import uvloop
from aiokafka.errors import KafkaConnectionError, KafkaError

from cxstream.alerts.comment_tags import LexiconError
from cxstream.alerts.config import RulesError
from cxstream.streams.ingest.deadletter_record import message_limit_problem
from cxstream.streams.kafka.confirmed_sends import EXIT_STOP_TIMEOUT, BatchGuard
from cxstream.streams.kafka.faust_app import FaustEnvironmentError, check_faust_environment
from cxstream.streams.kafka.faust_compat import FaustVersionError, install
from cxstream.streams.kafka.faust_compat.access import in_flight_events
from cxstream.streams.kafka.faust_compat.worker import Worker
from cxstream.streams.kafka.topic_admin import (
    TopicLayoutError,
    ensure_topics,
    ensure_worker_topics,
    resolved_replication,
    topic_max_message_bytes,
)
from cxstream.streams.services import WorkerFiles, WorkerServices, read_files
from cxstream.streams.settings import Settings
from cxstream.streams.table_limits import bound_problems, request_limit, value_bounds
from cxstream.streams.topology import build_app
from cxstream.streams.users import UsersError

log = logging.getLogger(__name__)


DRAIN_SECONDS = 20.0
#: time Faust's own stop may take after the drain before the process is ended
STOP_GRACE_SECONDS = 10.0
GC_THRESHOLDS = (100_000, 50, 1_000)


class WorkerStartError(RuntimeError):
    """The worker cannot start; the message says why."""


def run_worker(settings: Settings) -> None:
    """Run one worker until SIGTERM or SIGINT (then it commits and stops cleanly)."""
    # a crash inside a native library (RocksDB, the event loop) leaves the Python
    # tracebacks of every thread in the log instead of a bare exit code
    with contextlib.suppress(io.UnsupportedOperation, ValueError):
        faulthandler.enable()  # (not when stderr is no file, as under a test runner)
    with held_data_dir(settings):
        _run_worker(settings)


#: the lock file a worker holds in its data directory while it runs (with its pid)
DATA_DIR_LOCK = "worker.lock"


def held_data_dir(settings: Settings) -> contextlib.AbstractContextManager[Any]:
    """The data directory's lock, taken: a directory another process holds (a second
    worker given the same CXSTREAM_DATA_DIR, whose tables' files would be written by
    both) is refused, naming that process."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / DATA_DIR_LOCK

    def write_pid(fd: int) -> None:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())

    lock = filelock.FileLock(path, timeout=0, on_acquired=write_pid)
    try:
        return lock.acquire()  # released when the worker is done (a context manager)
    except filelock.Timeout as exc:
        holder = path.read_text(errors="replace").strip() or "?"
        raise WorkerStartError(
            f"the data directory {settings.data_dir} is held by another process (pid "
            f"{holder}, {path}): give each worker its own directory with --data-dir or "
            "CXSTREAM_DATA_DIR") from exc


def check_web_port(settings: Settings) -> None:
    """Refuse a web port another process listens on, naming it and the setting, before
    anything starts (Faust would log the bind error deep in its start-up and go on)."""
    family = socket.AF_INET6 if ":" in settings.web_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
        try:
            probe.bind((settings.web_host, settings.web_port))
        except OSError as exc:
            raise WorkerStartError(
                f"cannot listen on {settings.web_host}:{settings.web_port} ({exc.strerror}): "
                "another process uses the port; choose another with --web-port or "
                "CXSTREAM_WEB_PORT") from exc


def _run_worker(settings: Settings) -> None:
    check_web_port(settings)
    try:
        check_faust_environment(os.environ)
        install()  # the supported Faust and aiokafka, with cxstream's fixes
        files = checked_files(settings)
        settings = asyncio.run(asyncio.wait_for(resolved_replication(settings), timeout=60))
        counts = asyncio.run(asyncio.wait_for(ensure_topics(settings), timeout=60)).partitions
        asyncio.run(asyncio.wait_for(
            ensure_worker_topics(settings, counts[settings.topic_feedback],
                                 counts[settings.topic_alerts]), timeout=60))
        deadletter_limit = asyncio.run(asyncio.wait_for(
            topic_max_message_bytes(settings, settings.topic_deadletter), timeout=60))
        problem = message_limit_problem(settings.max_event_bytes,
                                        settings.producer_max_request_bytes,
                                        settings.topic_deadletter, deadletter_limit)
        if problem is not None:
            raise WorkerStartError(problem)
    except (FaustEnvironmentError, FaustVersionError, TopicLayoutError, RulesError,
            LexiconError, UsersError) as exc:
        raise WorkerStartError(str(exc)) from exc
    except KafkaConnectionError:
        raise  # the command line names the address, the setting and the flag (exit 3)
    except (KafkaError, OSError, TimeoutError) as exc:
        raise WorkerStartError(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {exc!r}"
        ) from exc
    # A worker allocates many short-lived objects per event next to a large long-lived
    # heap (decoded states, value index): fewer collections of the young generations.
    gc.set_threshold(*GC_THRESHOLDS)
    if settings.event_loop == "uvloop":
        # a policy, not just a loop: the consumer thread creates its own loop from it
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.set_event_loop(asyncio.new_event_loop())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per webhook call is noise
    try:
        built = build_app(settings, partition_count=counts[settings.topic_feedback],
                          alerts_partition_count=counts[settings.topic_alerts],
                          deadletter_partition_count=counts[settings.topic_deadletter],
                          deadletter_max_message_bytes=deadletter_limit, files=files)
    except (RulesError, LexiconError, ValueError) as exc:
        raise WorkerStartError(str(exc)) from exc
    services = built.services
    try:
        worker = DrainingWorker(built.app, loglevel=settings.log_level, quiet=True)
        worker.worker_services = services
        worker.drain_timeout = settings.drain_timeout_seconds
        # Faust's terminal spinner sets the root logger to DEBUG at levels warn and above,
        # so every debug call of Faust and aiokafka builds a log record
        worker.spinner = None
        worker.execute_from_commandline()
    finally:
        if services.exit.code is not None:  # the stall watchdog asked to be restarted
            raise SystemExit(services.exit.code)


def checked_files(settings: Settings) -> WorkerFiles:
    """The rules, lexicons and users, read and validated once, with every table's largest
    value under them checked against the producer's request limit."""
    files = read_files(settings)
    problems = bound_problems(value_bounds(settings, files.rules, files.tagger.topics),
                              request_limit(settings))
    if problems:
        raise WorkerStartError("\n".join(problems))
    return files


class DrainingWorker(Worker):
    """On SIGTERM or SIGINT: finish the events already taken, commit, then stop.

    Why: Faust's own stop skips waiting for in-flight events once it is stopping, so a
    batch finished just before the signal was redelivered (and re-dead-lettered) after a
    restart. A batch whose sends keep failing is given up (left unacknowledged) once the
    stop begins, and a batch that failed for good ends the process without Faust's own
    stop, which would acknowledge it: what was acknowledged before is committed, the rest
    is read again by the next owner. Either way the process is gone within the drain
    timeout (plus a few seconds for Faust's own stop).
    """

    drain_timeout = DRAIN_SECONDS
    #: the worker's services: the batch guard, and what to do once drained
    worker_services: WorkerServices | None = None

    async def before_stop_on_signal(self, sig: signal.Signals) -> None:
        log.info("signal %s: finishing in-flight events before stopping", sig.name)
        guard = None if self.worker_services is None else self.worker_services.guard
        if guard is not None:  # sends under way may finish within half the drain timeout
            guard.request_stop(self.drain_timeout / 2)
        _exit_after(self.drain_timeout + STOP_GRACE_SECONDS, EXIT_STOP_TIMEOUT)
        progress: dict[str, object] = {"step": "starting"}
        # A task and asyncio.wait, not wait_for: wait_for waits for a cancelled task to
        # finish, and a commit stuck inside the Kafka client would then block the stop.
        drain = asyncio.ensure_future(drain_and_commit(self.app, progress, guard))
        done, _ = await asyncio.wait({drain}, timeout=self.drain_timeout)
        if not done:
            drain.cancel()
            log.warning("could not drain within %.0f s (at: %s); stopping anyway, the "
                        "uncommitted events will be read again", self.drain_timeout, progress)
        elif drain.exception() is not None:  # stopping must go on whatever happens here
            log.warning("could not drain before stopping: %r", drain.exception())
        elif guard is None or guard.failed is None:
            await _after_drain(self.worker_services)
        if guard is not None and guard.failed is not None:
            code = guard.exit_code or 0
            log.warning("a batch was left unacknowledged; exiting with code %d", code)
            logging.shutdown()
            os._exit(code)  # Faust's stop would acknowledge the failed batch


async def _after_drain(services: WorkerServices | None) -> None:
    """What the services do once drained (save the value index); a failure there is
    logged, and the stop goes on."""
    if services is None:
        return
    try:
        await services.after_drain()
    except Exception:  # the next start reads the table instead: nothing is lost
        log.exception("could not run the after-drain step")


def _exit_after(seconds: float, code: int) -> None:
    """End the process if the stop is still going on after ``seconds`` (a thread: the
    event loop itself may be what is stuck)."""
    def hard_exit() -> None:
        log.error("the stop did not finish within %.0f s; exiting with code %d", seconds,
                  code)
        logging.shutdown()
        os._exit(code)

    timer = threading.Timer(seconds, hard_exit)
    timer.daemon = True
    timer.start()


async def drain_and_commit(app: Any, progress: dict[str, object] | None = None,
                           guard: BatchGuard | None = None) -> None:
    """Stop fetching, wait until every event taken by an agent is acknowledged (or its
    batch failed), commit.

    ``progress`` is updated with the current step, for the log line of a stop that takes
    too long."""
    progress = {} if progress is None else progress
    consumer = app.consumer
    consumer.pause_partitions(consumer.assignment())
    while guard is None or guard.failed is None:
        in_flight = in_flight_events(consumer)
        if not in_flight:
            break
        progress.update(step="waiting for in-flight events", in_flight=in_flight)
        await asyncio.sleep(0.05)
    # a commit already under way makes commit() wait for it and return False: once more
    committed = False
    for attempt in range(3):
        progress.update(step="committing", attempt=attempt + 1)
        if await consumer.commit():
            committed = True
            break
    log.info("drained in-flight events before stopping; %s", "offsets committed" if committed
             else "no new offset to commit")
