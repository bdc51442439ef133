"""The console's live inbox: one poll per user and view (filters and page) per tick,
whatever the number of pages showing it, and at most MAX_STREAMS_PER_USER live pages per
user.

Each open page used to ask the API for the inbox every 2 seconds on its own: ten tabs,
ten queries. Here one task polls, for each user with a live page open, and every page of
that user reads the same rows (``wait``); the task stops when the last page closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from cxstream.streams.users import Principal

log = logging.getLogger(__name__)
MAX_STREAMS_PER_USER = 8

#: the inbox rows of a user for one view (its filters and page; raises on failure)
Inbox = Callable[[Principal, Any], Awaitable[list[dict[str, Any]]]]
#: a watched inbox: the user's name and the view (hashable: filters and page)
Watched = tuple[str, Hashable]


class LiveInbox:
    """Polls each watched inbox (a user and a view: its filters and page) once per tick
    and hands it to the pages showing it; a user's pages, whatever their views, are at
    most ``max_per_user``."""

    def __init__(self, inbox: Inbox, every_seconds: float,
                 max_per_user: int = MAX_STREAMS_PER_USER) -> None:
        self.inbox = inbox
        self.every = every_seconds
        self.max_per_user = max_per_user
        #: (name, view) -> (user, pages showing it)
        self.watching: dict[Watched, tuple[Principal, int]] = {}
        self.latest: dict[Watched, tuple[int, list[dict[str, Any]] | None]] = {}
        self.polls = 0  # inbox queries made (tests count them)
        self.closed = False  # the worker stops: every page is answered at once
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def pages_of(self, name: str) -> int:
        return sum(pages for (user, _), (_, pages) in self.watching.items() if user == name)

    def open(self, principal: Principal, view: Hashable = None) -> bool:
        """A page starts streaming; False: the user has as many open as allowed."""
        if self.pages_of(principal.name) >= self.max_per_user:
            return False
        key = (principal.name, view)
        _, pages = self.watching.get(key, (principal, 0))
        self.watching[key] = (principal, pages + 1)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        return True

    def close(self, principal: Principal, view: Hashable = None) -> None:
        key = (principal.name, view)
        user, pages = self.watching.get(key, (principal, 1))
        if pages <= 1:
            self.watching.pop(key, None)
            self.latest.pop(key, None)
        else:
            self.watching[key] = (user, pages - 1)

    async def wait(self, principal: Principal, after: int, timeout: float,
                   view: Hashable = None) -> tuple[int, list[dict[str, Any]] | None]:
        """The view's rows once newer than version ``after`` (None rows: the poll
        failed), or (``after``, None) after ``timeout``."""
        key = (principal.name, view)
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(
                    lambda: self.closed
                    or self.latest.get(key, (0, None))[0] > after), timeout)
            except TimeoutError:
                return after, None
            if self.closed:
                return after, None
            return self.latest[key]

    async def shut(self) -> None:
        """The worker stops: wake every waiting page (they end their streams)."""
        self.closed = True
        async with self._changed:
            self._changed.notify_all()

    async def _run(self) -> None:
        while self.watching:
            for key, (principal, _) in list(self.watching.items()):
                try:
                    rows: list[dict[str, Any]] | None = await self.inbox(principal, key[1])
                except Exception as exc:  # the next tick tries again
                    log.info("console live update skipped: %s", exc)
                    rows = None
                self.polls += 1
                version = self.latest.get(key, (0, None))[0] + 1
                if key in self.watching:
                    self.latest[key] = (version, rows)
            async with self._changed:
                self._changed.notify_all()
            await asyncio.sleep(self.every)
