"""Customers a fall of a high-value threshold puts in the band while their experience is
low: evaluated at once, without waiting for another event of theirs.

Shape: bands before and after (streams.customers.band_refresh) -> ValueIndex.newly_high -> for each
such
customer: state -> high-value-at-risk rule -> alert and the state with its cooldown,
written and published like a batch's (confirmed before the next batch).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from cxstream.alerts.customer_alerts import CustomerAlerts
from cxstream.alerts.reactions import AlertOut
from cxstream.scoring.value_bands import ValueIndex
from cxstream.streams.customers.band_refresh import BandsHolder

log = logging.getLogger(__name__)


class Revaluator:
    """Runs under the worker's state lock: after each batch, and after each refresh of
    the other workers' shares."""

    def __init__(self, bands: BandsHolder, index: ValueIndex, owned: Callable[[], set[int]],
                 writer: Any, customer_alerts: CustomerAlerts) -> None:
        self.bands = bands
        self.index = index
        self.owned = owned
        self.writer = writer  # streams.customers.state_writer.StateWriter
        self.customer_alerts = customer_alerts
        self.last = bands.current
        self.pending: set[tuple[int, str]] = set()
        self.evaluated = 0

    async def run(self) -> int:
        """Evaluate the customers who entered the band since the last run; return the
        number of alerts raised."""
        current = self.bands.current
        if not self.bands.complete:
            return 0  # partitions recovering: thresholds of part of the customers only
        if current is not self.last:
            self.pending.update(self.index.newly_high(self.last, current, self.owned()))
            self.last = current
        if not self.pending:
            return 0
        pending, self.pending = sorted(self.pending), set()
        owned = self.owned()
        raised = 0
        for partition, customer_id in pending:
            if partition not in owned:
                continue
            state = self.writer.load_state(customer_id)
            if state is None or state.last_event_at is None:
                continue
            self.evaluated += 1
            cause = f"band:{state.last_event_at.isoformat()}"
            after, alerts = self.customer_alerts.react_to_value(
                cause, state, state, {"quadrant": "dangling"}, only_new=True)
            if alerts:
                self.writer.put_state(partition, customer_id, after,
                                      [AlertOut(status, alert) for status, alert in alerts])
                raised += len(alerts)
        if raised:
            log.info("%d high-value customers at risk found after a band change", raised)
            await self.writer.finish()
        return raised
