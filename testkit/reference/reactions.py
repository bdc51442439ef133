"""The reference of the customer rules over the contract's models, batch by batch, after
the reference fold (testkit/reference/fold.py): what the product's core
(alerts.customer_core.CustomerCore) must match, alert for alert (tests/unit/test_plain_core.py).
The rules themselves are the product's (alerts.customer_rules, AlertReactions.on_profile);
this is only the order they are applied in and what is carried between events."""

from __future__ import annotations

from typing import Any

from cxstream.alerts.group_rules import signals_of
from cxstream.alerts.reactions import AlertOut, AlertReactions, ResolveOut, SignalOut
from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.scoring.customer import CustomerState
from cxstream.scoring.fold import SourcedEvent
from testkit.reference.fold import Applied


def on_batch(reactions: AlertReactions, partition: int, applied: list[Applied],
             trace: list[tuple[Applied, CustomerState, list[Any]]] | None = None
             ) -> tuple[dict[str, dict[str, Any]], list[Any]]:
    """Customer -> their alert state after the batch (only those that changed), and
    the outputs in event order. ``applied``: what the fold applied, in order.
    ``trace``: given, gets each applied event with the state after the rules and the
    outputs it caused (what the survey desk and the priorities read)."""
    changed: dict[str, dict[str, Any]] = {}  # customer -> alert state carried along
    outputs: list[Any] = []
    for change in applied:
        customer_id = change.after.customer_id
        before, after = change.before, change.after
        carried = changed.get(customer_id)
        if carried is not None:  # set by an earlier event of this batch
            before = before.model_copy(update={"alerts": carried})
            after = after.model_copy(update={"alerts": carried})
        if isinstance(change.item.event, CustomerProfile):
            reacted, produced = reactions.on_profile(partition, change.item, before, after)
        else:
            reacted, produced = on_applied(reactions, change.item, before, after)
        outputs += produced
        if trace is not None:
            trace.append((change, reacted, produced))
        if reacted.alerts is not after.alerts:
            changed[customer_id] = reacted.alerts
    return changed, outputs


def on_applied(reactions: AlertReactions, item: SourcedEvent, before: CustomerState,
               after: CustomerState) -> tuple[CustomerState, list[Any]]:
    event = item.event
    assert isinstance(event, Feedback | Interaction)
    topics = reactions.customer_alerts.topics_of(event)
    after, alerts = reactions.customer_alerts.react(event, before, after, topics)
    outputs: list[Any] = [AlertOut(status, alert, item.record_time)
                          for status, alert in alerts]
    if not alerts:  # an event that raises an alert does not also resolve one
        after, resolved = reactions.customer_alerts.settle(event, after)
        outputs += [ResolveOut(r) for r in resolved]
    return after, outputs + _signals(reactions, event, topics, after)


def _signals(reactions: AlertReactions, event: Feedback | Interaction, topics: list[str],
             state: CustomerState) -> list[Any]:
    segment = state.profile.segment if state.profile else None
    return [SignalOut(signal) for signal in
            signals_of(event, topics, segment, reactions.config, reactions.state_rules)]
