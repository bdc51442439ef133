"""The hot path of a worker: one batch of one partition in, what it changed and caused out.

    CustomerCore.fold_batch(partition, items, stored) -> BatchOutcome(customers to write,
        partial tallies, watermark, group keys, outputs in event order, outcome counts,
        the facts the survey desk and the priorities fold next)

A function of its inputs: the batch's records, the stored values (``TablesRead``: the
customers of the batch read beforehand, the tables' stores for what the fold may need,
the value bands, read mid-batch since the batch's own profiles move them) and the clock
of the customer rules. It calls nothing of a higher layer (tests/unit/test_layers_at_run_time.py
records every call of a batch to check it); what it caused for the layers above is in the
result: the survey requests and the issue priorities are folds over ``BatchOutcome.facts``
(streams.customers.state_writer.StateWriter._write).

Plain data throughout (scoring.plain_customer, scoring.batch_fold); the customer rules look at most
events without building anything: a rule can only fire, or an alert resolve, for an
answer under a rule's threshold, a social post, a customer entering the at-risk quadrant
or a customer with an alert still cooling. Only those events build the contract's models
and go through ``AlertReactions`` (alerts.reactions), which stays the one place where the
rules are applied, so alerts are the same whichever path computed the fold. The narrow
interface (validated events and stored values in, values out) is what a compiled
implementation would have to replace.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from time import perf_counter
from typing import Any

from cxstream.alerts.config import RulesConfig
from cxstream.alerts.core_predictions import CorePredictions
from cxstream.alerts.customer_alerts import auto_resolves, recovered
from cxstream.alerts.group_rules import Signal, is_negative_feedback, signals_of
from cxstream.alerts.reactions import AlertOut, AlertReactions, ResolveOut, SignalOut
from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.scoring.batch_fold import FoldBatch
from cxstream.scoring.customer import quadrant_of
from cxstream.scoring.fold import FoldRules, SourcedEvent
from cxstream.scoring.groups import GroupKeys
from cxstream.scoring.plain_customer import (
    NEGATIVE_OUTCOMES,
    Customer,
    HistoryLoader,
    PlainRules,
    experience_is_low,
    is_negative,
)
from cxstream.scoring.plain_models import to_model
from cxstream.scoring.prediction import Predictor
from cxstream.scoring.value_bands import LiveBands

log = logging.getLogger(__name__)


@dataclass
class BatchOutcome:
    customers: dict[str, Customer] = field(default_factory=dict)  # changed ones, to write
    changed: set[str] = field(default_factory=set)
    partials: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the recent answers of the groups the batch's answers counted in, by table key
    answers: dict[str, list[Any]] = field(default_factory=dict)
    watermark: dict[str, Any] = field(default_factory=dict)
    keys: GroupKeys | None = None
    outputs: list[Any] = field(default_factory=list)  # AlertOut, ResolveOut, SignalOut
    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)
    #: event times (epoch seconds) of the events applied for the first time
    applied_times: list[float] = field(default_factory=list)
    #: what the folds above the core need of each applied event, in event order
    facts: list[Fact] = field(default_factory=list)
    #: seconds the customer rules took, inside the fold (cxstream_own_work_seconds_total)
    rules_seconds: float = 0.0
    #: (kind, event time) of the events too old for the customer rules (max_event_age_hours)
    too_old: list[tuple[str, datetime]] = field(default_factory=list)
    #: (answer time in µs, the prediction made before it, low or not) of the new answers
    #: (with a prediction model configured)
    predicted: list[tuple[int, float, bool]] = field(default_factory=list)
    #: seconds the predictions took, inside the fold
    predict_seconds: float = 0.0


@dataclass(slots=True)
class Fact:
    """An applied event, with what the survey desk and the priorities read of the
    customer's state just after it (streams.customers.survey_desk, streams.issues.priorities): the
    profile
    tuple and the alert state (both replaced, never changed in place, so holding them is
    a snapshot), its negative signals and whether the customer is in the top value band
    (None: unknown, or not looked up because nothing needed it). ``profile_changed``: a
    profile that gave the customer a new value."""

    item: SourcedEvent
    profile: tuple[Any, ...] | None
    alerts: dict[str, Any]
    signals: list[Signal]
    top: bool | None
    profile_changed: bool = False
    #: the customer's predicted probability (CustomerCore._predicted; None: no model)
    predicted: float | None = None


class TablesRead:
    """What the core reads of the tables, for one partition: values and stores, no
    callbacks into the caller."""

    def __init__(self, customers: Mapping[str, Customer | None],
                 partials: Mapping[bytes, Any],
                 watermark: tuple[float, int], keys: GroupKeys | None,
                 history: HistoryLoader | None = None) -> None:
        #: every customer of the batch, read beforehand (None: a new customer)
        self.customers = customers
        self.history = history  # where a new customer's history will be read from
        #: the partial tallies' store, by encoded key
        self.partials = partials
        self.watermark = watermark
        self.keys = keys


class CustomerCore:
    """The fold and the customer rules of one worker, on plain data."""

    def __init__(self, rules: FoldRules, reactions: AlertReactions | None,
                 bands: LiveBands | None = None, predictor: Predictor | None = None
                 ) -> None:
        self.rules = rules
        self.plain_rules = PlainRules(rules.state, ledger=predictor is not None)
        #: the prediction model's part (None: no model configured)
        self.predictions = None if predictor is None else CorePredictions(predictor)
        self.reactions = reactions
        #: the value bands, read when a rule needs them (None: the quadrant is taken from
        #: the rules' own report of the state, built per event)
        self.bands = bands

    def fold_batch(self, partition: int, items: Sequence[SourcedEvent],
                   stored: TablesRead) -> BatchOutcome:
        batch = FoldBatch(partition, self.rules, self.plain_rules, stored.partials,
                          stored.watermark, stored.keys)
        result = BatchOutcome(keys=stored.keys)
        states: dict[str, Customer] = {}  # in the order of their first event
        changed_ids = result.changed
        clock = perf_counter
        rules_seconds = 0.0
        for item in items:
            customer_id = item.event.customer_id
            state = states.get(customer_id)
            if state is None:
                state = stored.customers.get(customer_id)
                if state is None:
                    state = Customer(customer_id, stored.history)
                    changed_ids.add(customer_id)  # a new state is written
                states[customer_id] = state
            is_profile = isinstance(item.event, CustomerProfile)
            before: Any = None
            profile_before = state.profile
            low = experience_is_low(state, self.plain_rules)  # the experience before
            if is_profile and self.reactions is not None and (low or state.alerts.get("open")):
                before = to_model(state)  # the profile rules read the whole state
            predicted = (self.predictions.before_answer(state, item.event)
                         if self.predictions is not None and isinstance(item.event, Feedback)
                         else None)
            applied, changed = batch.fold(item, state)
            if changed:
                changed_ids.add(customer_id)
            if not applied:
                continue
            if predicted is not None:
                result.predicted.append(predicted)
            occurred = getattr(item.event, "occurred_at", None)
            if occurred is not None:
                result.applied_times.append(occurred.timestamp())
            if self.reactions is None:
                continue
            began = clock()
            if is_profile:  # a profile leaves the experience as it was
                if before is not None:
                    self._on_profile(partition, item, before, state, result)
                elif state.profile != profile_before:
                    self._note_profile(partition, state, low)
                rules_seconds += clock() - began
                if state.profile != profile_before:
                    # a new value for the issues the customer counts in (the band is
                    # looked up only for those: most customers count in none)
                    result.facts.append(Fact(item, state.profile, state.alerts, [], None,
                                             True))
                continue
            signals, top = self._on_applied(item, state, low,
                                            experience_is_low(state, self.plain_rules),
                                            result)
            rules_seconds += clock() - began
            result.facts.append(Fact(item, state.profile, state.alerts, signals, top,
                                     predicted=self._predicted(state, item, signals)))
        result.rules_seconds = rules_seconds
        return self._finish(result, batch, states)

    def _finish(self, result: BatchOutcome, batch: FoldBatch, states: dict[str, Customer]
                ) -> BatchOutcome:
        result.customers = {customer_id: state for customer_id, state in states.items()
                            if customer_id in result.changed}
        if self.predictions is not None:  # the predict stage holds the rules' ones too
            result.predict_seconds, in_rules = self.predictions.batch_done()
            result.rules_seconds -= in_rules
        result.partials = batch.changed_partials()
        result.answers = batch.answers
        result.watermark = batch.watermark()
        result.outcomes = dict(batch.outcomes)
        return result

    def _predicted(self, state: Customer, item: SourcedEvent, signals: list[Signal]
                   ) -> float | None:
        """The customer's probability just after an event for the folds that read it
        (alerts.core_predictions); None when none does."""
        if self.predictions is None or not (signals or (
                isinstance(item.event, Interaction) and self.reactions is not None
                and self.reactions.config.surveys.predicted_first is not None)):
            return None
        return self.predictions.after(state, item.event)  # type: ignore[arg-type]

    def _as_rules_read(self, state: Customer, event: Feedback | Interaction) -> Any:
        """The state as the rules read it, with its prediction as of the event."""
        if self.predictions is not None:
            self.predictions.for_rules(state, event)
        return to_model(state)

    # -- value band ---------------------------------------------------------------

    def _high_value(self, state: Customer) -> bool | None:
        """Whether the customer is high-value with the current bands (None: no profile
        or no band yet). Asked only when it can decide something: the bands are rebuilt
        after every new profile, and most events need no quadrant."""
        if self.bands is None:
            assert self.reactions is not None
            high: bool | None = self.reactions.customer_alerts.report_of(
                to_model(state)).get("high_value")
            return high
        if state.profile is None:
            return None
        return self.bands.current.flags(state.profile[0], state.profile[1])["high_value"]

    # -- rules ------------------------------------------------------------------------

    def _note_profile(self, partition: int, state: Customer, low: bool | None) -> None:
        """A new profile of a customer whose experience is not low and who has no alert:
        all that AlertReactions.on_profile does then is tell the value bands."""
        reactions = self.reactions
        assert reactions is not None and state.profile is not None
        if reactions.note_value is not None:
            reactions.note_value(partition, state.customer_id, state.profile[0],
                                 state.profile[1], low)
        elif reactions.note_profile is not None:
            reactions.note_profile(partition, to_model(state))

    def _on_profile(self, partition: int, item: SourcedEvent, before: Any,
                    state: Customer, result: BatchOutcome) -> None:
        assert self.reactions is not None
        if self.predictions is not None:
            self.predictions.for_profile(state)
        after = to_model(state)
        reacted, produced = self.reactions.on_profile(partition, item, before, after)
        if reacted.alerts is not after.alerts:
            state.alerts = dict(reacted.alerts)
            result.changed.add(state.customer_id)
        raised = [out.alert for out in produced if isinstance(out, AlertOut)]
        if raised and self.predictions is not None and state.prediction is not None:
            self.predictions.explain(state, raised)
        result.outputs += produced

    def _on_applied(self, item: SourcedEvent, state: Customer, low_before: bool | None,
                    low_after: bool | None, result: BatchOutcome
                    ) -> tuple[list[Signal], bool | None]:
        """The customer rules on an applied event, ``low_*``: the experience before and
        after it. The value band is the same on both sides (no profile in between), so
        the customer enters the at-risk quadrant only when their experience turns low.
        Returns its signals, with whether the customer is in the top value band (looked
        up only when there are signals)."""
        assert self.reactions is not None
        event = item.event
        assert isinstance(event, Feedback | Interaction)
        alerts = self.reactions.customer_alerts
        config = self.reactions.config
        known: list[bool | None] = []

        def high() -> bool | None:
            if not known:
                known.append(self._high_value(state))
            return known[0]

        recent = alerts.now() - event.occurred_at <= timedelta(
            hours=config.max_event_age_hours)
        if not recent:
            result.too_old.append(("feedback" if isinstance(event, Feedback) else "interaction",
                                   event.occurred_at))
        may_alert = recent and (
            (config.high_value_at_risk.enabled and low_after is True
             and low_before is not True and high() is True)
            or (isinstance(event, Feedback) and config.detractor.enabled
                and is_negative_feedback(event, config))
            or (isinstance(event, Interaction) and _may_be_negative_post(event, config))
            or _may_resolve(state, event, lambda: quadrant_of(high(), low_after), config)
            or (bool(alerts.added_on) and any(rule.may_fire(event, settings)
                                              for rule, settings in alerts.added_on)))
        signals = _may_signal(event, self.reactions)
        if not (may_alert or signals):
            return [], None
        topics = alerts.topics_of(event)
        model = None
        if may_alert:
            model = self._as_rules_read(state, event)
            after, raised = alerts.react_from(event, quadrant_of(high(), low_before), model,
                                              topics)
            if raised and self.predictions is not None:
                self.predictions.explain(state, [alert for _, alert in raised])
            result.outputs += [AlertOut(status, alert, item.record_time)
                               for status, alert in raised]
            if not raised:
                after, resolved = alerts.settle(event, after)
                result.outputs += [ResolveOut(r) for r in resolved]
            if after.alerts is not model.alerts:
                state.alerts = dict(after.alerts)
                result.changed.add(state.customer_id)
        if signals:
            segment = state.profile[0] if state.profile else None
            found = signals_of(event, topics, segment, config, self.reactions.state_rules)
            result.outputs += [SignalOut(signal) for signal in found]
            if found:
                return found, high()
        return [], None


def _may_signal(event: Feedback | Interaction, reactions: AlertReactions) -> bool:
    """Whether the event gives group-rule signals (group_rules.signals_of)."""
    if isinstance(event, Feedback):
        return is_negative_feedback(event, reactions.config)
    return event.outcome in NEGATIVE_OUTCOMES or is_negative(event, reactions.state_rules)


def _may_be_negative_post(event: Interaction, config: RulesConfig) -> bool:
    """social_negative_trigger may fire (without tagging: complaint wording is looked
    for only when the post has no sentiment)."""
    rule = config.social_negative
    if not rule.enabled or event.channel != "social":
        return False
    return event.sentiment is None or event.sentiment <= rule.sentiment_max


def _may_resolve(state: Customer, event: Feedback | Interaction,
                 quadrant: Callable[[], str | None], config: RulesConfig) -> bool:
    """Whether ``event`` may resolve an alert of the customer (customer_rules.settle): one
    still cooling at its time, of a rule that resolves by itself and that it recovers."""
    at = event.occurred_at
    for rule, alert in state.alerts.get("open", {}).items():
        if (auto_resolves(rule, config)
                and at < datetime.fromisoformat(alert["until"])
                and recovered(rule, event, {"quadrant": quadrant()}, config) is not None):
            return True
    return False


def count_too_old(result: BatchOutcome, counter: Any) -> None:
    """Count the batch's events the customer rules skipped for their age, by kind, on
    ``counter`` (cxstream_events_too_old_for_rules_total), and say so in one log line."""
    if not result.too_old:
        return
    for kind, count in Counter(kind for kind, _ in result.too_old).items():
        counter.labels(kind).inc(count)
    log.info("%d event(s) older than the rules file's max_event_age_hours (oldest "
             "occurred_at %s): counted in the scores, no customer alert for them",
             len(result.too_old), min(at for _, at in result.too_old).isoformat())
