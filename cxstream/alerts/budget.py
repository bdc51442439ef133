"""An alert budget per recipient, against alert fatigue.

At most ``per_hour`` warning and info alerts are posted one by one to a recipient in any
rolling hour; the rest are held and posted together, as one digest, ``digest_minutes``
after the first of them was held. Critical alerts and follow-ups are never held. Holding
delays only the notification: the alert is on the topic, in the API and in the console at
once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
HOUR = 3_600.0


@dataclass
class _Recipient(Generic[Item]):
    posted: deque[float] = field(default_factory=deque)  # times of single posts, last hour
    held: list[Item] = field(default_factory=list)
    held_since: float | None = None


class AlertBudget(Generic[Item]):
    """Decides, per recipient, whether an alert is posted now or held for the digest."""

    def __init__(self, per_hour: int, digest_minutes: float) -> None:
        self.per_hour = per_hour
        self.digest_seconds = digest_minutes * 60
        self.recipients: dict[str, _Recipient[Item]] = {}

    def _of(self, recipient: str) -> _Recipient[Item]:
        return self.recipients.setdefault(recipient, _Recipient())

    def admit(self, recipient: str, severity: str, item: Item, now: float) -> bool:
        """True: post it now (and count it); False: it is held for the digest."""
        state = self._of(recipient)
        while state.posted and state.posted[0] <= now - HOUR:
            state.posted.popleft()
        if severity == "critical":
            return True
        if len(state.posted) < self.per_hour:
            state.posted.append(now)
            return True
        if state.held_since is None:
            state.held_since = now
        state.held.append(item)
        return False

    def held(self) -> int:
        return sum(len(state.held) for state in self.recipients.values())

    def due(self, now: float) -> list[tuple[str, list[Item]]]:
        """The digests to post now: (recipient, held items), oldest first. The items stay
        held until ``posted`` is called, so a digest that fails is tried again."""
        return [(recipient, list(state.held)) for recipient, state in self.recipients.items()
                if state.held and state.held_since is not None
                and now - state.held_since >= self.digest_seconds]

    def posted(self, recipient: str, items: list[Item]) -> None:
        """The digest of ``items`` reached the recipient."""
        state = self._of(recipient)
        sent = {id(item) for item in items}
        state.held = [item for item in state.held if id(item) not in sent]
        state.held_since = None if not state.held else state.held_since
