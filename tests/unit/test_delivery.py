"""Confirmed sends: retries for retriable errors only, a stop that gives up, backoff."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
)
from hypothesis import given
from hypothesis import strategies as st

from cxstream.streams.kafka.confirmed_sends import (
    EXIT_BATCH_FAILED,
    EXIT_SEND_FAILED,
    BatchAbandoned,
    BatchGuard,
    SendFailed,
    backoff_seconds,
    is_retriable,
    send_confirmed,
)


def test_which_errors_are_retried() -> None:
    assert is_retriable(KafkaConnectionError())
    assert is_retriable(NotLeaderForPartitionError())
    assert is_retriable(ConnectionError())
    assert not is_retriable(MessageSizeTooLargeError())
    assert not is_retriable(TopicAuthorizationFailedError())
    assert not is_retriable(ValueError("a bug"))


@given(st.integers(0, 100), st.floats(0.01, 5), st.floats(0.1, 60), st.integers())
def test_backoff_is_jittered_within_its_cap(attempt: int, base: float, cap: float,
                                            seed: int) -> None:
    wait = backoff_seconds(attempt, base, cap, random.Random(seed))
    assert 0 <= wait <= min(cap, base * 2 ** min(attempt, 30))


async def test_retriable_failures_are_retried_until_the_send_succeeds() -> None:
    attempts = []
    retries = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise KafkaConnectionError("broker away")
        return "ok"

    result = await send_confirmed(flaky, BatchGuard(kill=lambda: None), "test send",
                           on_retry=lambda: retries.append(1), base=0.001)
    assert result == "ok" and len(attempts) == 3 and len(retries) == 2


async def test_a_failure_retrying_cannot_fix_is_not_retried() -> None:
    attempts = []

    async def too_large() -> None:
        attempts.append(1)
        raise MessageSizeTooLargeError("1200000 bytes")

    with pytest.raises(SendFailed, match="MessageSizeTooLargeError"):
        await send_confirmed(too_large, BatchGuard(kill=lambda: None), "test send", base=0.001)
    assert len(attempts) == 1


async def test_a_stop_gives_up_a_send_that_keeps_failing() -> None:
    guard = BatchGuard(kill=lambda: None)
    attempts = []

    async def down() -> None:
        attempts.append(1)
        raise KafkaConnectionError("broker away")

    task = asyncio.ensure_future(send_confirmed(down, guard, "test send", base=0.05, cap=0.05))
    await asyncio.sleep(0.2)
    guard.request_stop(grace_seconds=0.0)
    with pytest.raises(BatchAbandoned):
        await asyncio.wait_for(task, 1)
    assert len(attempts) >= 2


async def test_a_send_under_way_at_the_stop_may_finish_within_the_grace() -> None:
    guard = BatchGuard(kill=lambda: None)

    async def slow() -> str:
        await asyncio.sleep(0.1)
        return "done"

    task = asyncio.ensure_future(send_confirmed(slow, guard, "test send"))
    await asyncio.sleep(0.01)
    guard.request_stop(grace_seconds=1.0)
    assert await asyncio.wait_for(task, 2) == "done"


async def test_a_send_that_hangs_past_the_grace_is_abandoned() -> None:
    guard = BatchGuard(kill=lambda: None)

    async def hangs() -> None:
        await asyncio.Event().wait()

    task = asyncio.ensure_future(send_confirmed(hangs, guard, "test send"))
    await asyncio.sleep(0.01)
    guard.request_stop(grace_seconds=0.05)
    with pytest.raises(BatchAbandoned):
        await asyncio.wait_for(task, 1)


async def test_a_failed_batch_is_held_and_the_worker_asked_to_stop() -> None:
    kills = []
    guard = BatchGuard(kill=lambda: kills.append(1))
    held = asyncio.ensure_future(guard.fail(SendFailed("record too large")))
    await asyncio.sleep(0.05)
    assert not held.done()  # never leaves: leaving would acknowledge the batch
    assert kills == [1] and guard.exit_code == EXIT_SEND_FAILED
    held.cancel()
    other = BatchGuard(kill=lambda: kills.append(2))
    held = asyncio.ensure_future(other.fail(KeyError("a bug")))
    await asyncio.sleep(0.01)
    assert other.exit_code == EXIT_BATCH_FAILED and kills == [1, 2]
    held.cancel()
