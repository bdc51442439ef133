"""The console's live inbox: one poll per user per tick however many pages they have
open, a cap of pages per user, and pages woken at once when the worker stops."""

from __future__ import annotations

import asyncio
from typing import Any

from cxstream.streams.users import Principal
from cxstream.streams.web.console.live import LiveInbox

ALICE, BOB = Principal("alice", ("smb-support",)), Principal("bob", ("key-accounts",))


async def test_many_pages_of_one_user_cost_one_poll_per_tick() -> None:
    asked: list[str] = []

    async def inbox(principal: Principal, view: Any) -> list[dict[str, Any]]:
        asked.append(principal.name)
        return [{"alert_id": f"{principal.name}-1"}]

    live = LiveInbox(inbox, every_seconds=0.05, max_per_user=10)
    for _ in range(10):
        assert live.open(ALICE)
    assert live.open(BOB)
    seen = await asyncio.gather(*(live.wait(ALICE, 0, 1.0) for _ in range(10)),
                                live.wait(BOB, 0, 1.0))
    assert all(rows == [{"alert_id": "alice-1"}] for _, rows in seen[:10])
    assert seen[10][1] == [{"alert_id": "bob-1"}]
    await asyncio.sleep(0.22)  # about four more ticks
    ticks = asked.count("alice")
    assert 3 <= ticks <= 7 and asked.count("bob") == ticks  # not ten per tick for alice
    for _ in range(10):
        live.close(ALICE)
    live.close(BOB)
    await asyncio.sleep(0.1)
    stopped = len(asked)
    await asyncio.sleep(0.15)
    assert len(asked) == stopped  # nobody watches: no polling


async def test_a_user_may_open_only_so_many_live_pages() -> None:
    async def inbox(principal: Principal, view: Any) -> list[dict[str, Any]]:
        return []

    live = LiveInbox(inbox, every_seconds=10, max_per_user=2)
    assert live.open(ALICE) and live.open(ALICE)
    assert not live.open(ALICE)  # the console answers 429
    assert live.open(BOB)
    live.close(ALICE)
    assert live.open(ALICE)
    await live.shut()


async def test_stopping_wakes_every_waiting_page_at_once() -> None:
    async def inbox(principal: Principal, view: Any) -> list[dict[str, Any]]:
        return []

    live = LiveInbox(inbox, every_seconds=10)
    live.open(ALICE)
    version, _ = await live.wait(ALICE, 0, 1.0)  # the first poll
    waiting = asyncio.ensure_future(live.wait(ALICE, version, 30.0))
    await asyncio.sleep(0.05)
    await live.shut()
    assert await asyncio.wait_for(waiting, 1.0) == (version, None)


async def test_each_view_of_a_user_is_polled_once_and_counts_towards_their_pages() -> None:
    asked: list[tuple[str, Any]] = []

    async def inbox(principal: Principal, view: Any) -> list[dict[str, Any]]:
        asked.append((principal.name, view))
        return [{"alert_id": f"{view}"}]

    live = LiveInbox(inbox, every_seconds=0.05, max_per_user=3)
    critical, page_two = ("severity=critical",), ("offset=50",)
    assert live.open(ALICE, critical) and live.open(ALICE, critical)
    assert live.open(ALICE, page_two)
    assert not live.open(ALICE)  # three pages already, whatever their views
    (_, rows), (_, other) = await asyncio.gather(live.wait(ALICE, 0, 1.0, critical),
                                                 live.wait(ALICE, 0, 1.0, page_two))
    assert rows == [{"alert_id": str(critical)}] and other == [{"alert_id": str(page_two)}]
    await asyncio.sleep(0.12)
    assert asked.count(("alice", critical)) == asked.count(("alice", page_two))
    await live.shut()
