"""Confirmed sends: every record a batch causes is acknowledged by Kafka before the batch
is, and a send that cannot succeed stops the worker instead of being retried forever.

Shape: ``send_confirmed(send, guard)`` -> the send's result, or ``SendFailed`` (retrying cannot
help: record too large, not authorized, unknown topic...), or ``BatchAbandoned`` (the worker
is stopping while a retriable failure persists). Either exception leaves the batch
unacknowledged: ``BatchGuard.fail`` holds it until the process exits, and the events are
read again by the next owner of their partitions.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: exit codes of a worker (docs/operations.md, "Exit codes")
EXIT_SEND_FAILED = 74  # EX_IOERR: a record could not be written for good; batch not acked
EXIT_BATCH_FAILED = 70  # EX_SOFTWARE: an unexpected error escaped a batch; batch not acked
EXIT_STOP_TIMEOUT = 73  # the stop did not finish within the drain timeout


class SendFailed(RuntimeError):
    """A send failed with an error that retrying cannot fix."""


class BatchAbandoned(RuntimeError):
    """The worker is stopping while a send of the batch keeps failing."""


def is_retriable(exc: BaseException) -> bool:
    """Whether sending the same record again may succeed (broker away, leader moving...)."""
    if isinstance(exc, KafkaTimeoutError | KafkaConnectionError | asyncio.TimeoutError
                  | ConnectionError):
        return True
    if isinstance(exc, KafkaError):
        return bool(getattr(exc, "retriable", False))
    return False


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^attempt)]."""
    return rng.uniform(0, min(cap, base * 2 ** min(attempt, 30)))


async def until_stopped(awaitable: Awaitable[T], stop: asyncio.Event) -> T:
    """Await ``awaitable``; raise BatchAbandoned if ``stop`` is set first."""
    task = asyncio.ensure_future(awaitable)
    if stop.is_set():
        task.cancel()
        raise BatchAbandoned("the worker is stopping")
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if not task.done():
        task.cancel()
        raise BatchAbandoned("the worker is stopping")
    return task.result()


async def send_confirmed(send: Callable[[], Awaitable[T]], guard: BatchGuard, what: str,
                  on_retry: Callable[[], Any] = lambda: None, base: float = 0.2,
                  cap: float = 10.0, rng: random.Random | None = None) -> T:
    """Run ``send`` until it succeeds. Retriable failures are retried with jittered
    backoff, but not once the worker is stopping (then BatchAbandoned); others raise
    SendFailed. A send under way when the stop begins may finish until the guard's
    ``abandon`` time."""
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            return await until_stopped(send(), guard.abandon)
        except BatchAbandoned:
            raise
        except Exception as exc:
            if not is_retriable(exc):
                raise SendFailed(f"{what}: {type(exc).__name__}: {exc}") from exc
            on_retry()
            wait = backoff_seconds(attempt, base, cap, rng)
            log.warning("%s failed (%r); retrying in %.1f s", what, exc, wait)
            attempt += 1
            try:
                await until_stopped(asyncio.sleep(wait), guard.stopping)
            except BatchAbandoned:
                raise BatchAbandoned(f"the worker is stopping; {what} still failing: "
                                     f"{exc!r}") from exc


class BatchGuard:
    """What a worker knows of its batches while stopping: ``stopping`` (no more retries),
    ``abandon`` (set ``grace_seconds`` later: sends under way are given up), and the batch
    (if any) that failed and must not be acknowledged."""

    def __init__(self, kill: Callable[[], None] | None = None) -> None:
        self.stopping = asyncio.Event()
        self.abandon = asyncio.Event()
        self.failed: BaseException | None = None
        self.exit_code: int | None = None
        self._kill = kill or (lambda: os.kill(os.getpid(), signal.SIGTERM))

    def request_stop(self, grace_seconds: float = 0.0) -> None:
        self.stopping.set()
        if grace_seconds <= 0:
            self.abandon.set()
        else:
            asyncio.get_running_loop().call_later(grace_seconds, self.abandon.set)

    async def fail(self, exc: BaseException) -> None:
        """Hold the failed batch unacknowledged and stop the worker; never returns.

        Faust acknowledges a batch as soon as the agent leaves it (even by an exception),
        and a later commit would then skip its events: the agent stays here instead, and
        the worker exits after committing what was acknowledged before."""
        if self.failed is None:
            self.failed = exc
            if isinstance(exc, BatchAbandoned):  # a requested stop: the next owner redoes it
                log.warning("batch left unacknowledged while stopping: %s", exc)
            else:
                self.exit_code = (EXIT_SEND_FAILED if isinstance(exc, SendFailed)
                                  else EXIT_BATCH_FAILED)
                log.error("batch failed, not acknowledged; stopping (exit %d): %r",
                          self.exit_code, exc, exc_info=exc)
            if not self.stopping.is_set():
                self._kill()
        await asyncio.Event().wait()
