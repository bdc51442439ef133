"""The console's live inbox: one poll per user per tick, whatever the number of their
open pages, and at most MAX_STREAMS_PER_USER live pages per user.

Each open page used to ask the API for the inbox every 2 seconds on its own: ten tabs,
ten queries. Here one task polls, for each user with a live page open, and every page of
that user reads the same rows (``wait``); the task stops when the last page closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from cxstream.streams.users import Principal

log = logging.getLogger(__name__)
MAX_STREAMS_PER_USER = 8

#: the inbox rows of a user (raises on failure)
Inbox = Callable[[Principal], Awaitable[list[dict[str, Any]]]]


class LiveInbox:
    """Polls each watching user's inbox once per tick and hands it to their pages."""

    def __init__(self, inbox: Inbox, every_seconds: float,
                 max_per_user: int = MAX_STREAMS_PER_USER) -> None:
        self.inbox = inbox
        self.every = every_seconds
        self.max_per_user = max_per_user
        self.watching: dict[str, tuple[Principal, int]] = {}  # name -> (user, pages)
        self.latest: dict[str, tuple[int, list[dict[str, Any]] | None]] = {}
        self.polls = 0  # inbox queries made (tests count them)
        self.closed = False  # the worker stops: every page is answered at once
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def open(self, principal: Principal) -> bool:
        """A page starts streaming; False: the user has as many open as allowed."""
        _, pages = self.watching.get(principal.name, (principal, 0))
        if pages >= self.max_per_user:
            return False
        self.watching[principal.name] = (principal, pages + 1)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        return True

    def close(self, principal: Principal) -> None:
        user, pages = self.watching.get(principal.name, (principal, 1))
        if pages <= 1:
            self.watching.pop(principal.name, None)
            self.latest.pop(principal.name, None)
        else:
            self.watching[principal.name] = (user, pages - 1)

    async def wait(self, principal: Principal, after: int, timeout: float
                   ) -> tuple[int, list[dict[str, Any]] | None]:
        """The user's rows once newer than version ``after`` (None rows: the poll failed),
        or (``after``, None) after ``timeout``."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(
                    lambda: self.closed
                    or self.latest.get(principal.name, (0, None))[0] > after), timeout)
            except TimeoutError:
                return after, None
            if self.closed:
                return after, None
            return self.latest[principal.name]

    async def shut(self) -> None:
        """The worker stops: wake every waiting page (they end their streams)."""
        self.closed = True
        async with self._changed:
            self._changed.notify_all()

    async def _run(self) -> None:
        while self.watching:
            for name, (principal, _) in list(self.watching.items()):
                try:
                    rows: list[dict[str, Any]] | None = await self.inbox(principal)
                except Exception as exc:  # the next tick tries again
                    log.info("console live update skipped: %s", exc)
                    rows = None
                self.polls += 1
                version = self.latest.get(name, (0, None))[0] + 1
                if name in self.watching:
                    self.latest[name] = (version, rows)
            async with self._changed:
                self._changed.notify_all()
            await asyncio.sleep(self.every)
