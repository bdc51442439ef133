"""``faust.Worker`` with a public hook before its stop on SIGTERM or SIGINT."""

from __future__ import annotations

import signal

import faust


class Worker(faust.Worker):
    """Override ``before_stop_on_signal``: it runs, to its end, before Faust's own stop
    (mode's ``_stop_on_signal``, which has no public hook)."""

    async def before_stop_on_signal(self, sig: signal.Signals) -> None:
        """Nothing by default."""

    async def _stop_on_signal(self, sig: signal.Signals) -> None:
        await self.before_stop_on_signal(sig)
        await super()._stop_on_signal(sig)
