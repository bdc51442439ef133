"""The largest value each bounded table can hold under the settings, and the start-up
check that every one fits the producer's request limit.

A changelog record the producer refuses (MessageSizeTooLargeError) fails its batch, and a
restarted worker fails on the same batch again: the partition stops for good. So a
worker refuses settings under which any value could grow past the limit, naming the
settings to change. The bounds themselves are computed where each value is encoded
(scoring.bounds, alerts.surveys) and tested there at every cap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cxstream.alerts.bounds import (
    alert_bytes_bound,
    case_bytes_bound,
    deadletter_mark_bytes,
    issue_window_bytes_bound,
    priority_mark_bytes_bound,
)
from cxstream.alerts.comment_tags import load_tagger
from cxstream.alerts.config import RulesConfig
from cxstream.alerts.surveys import memory_bytes_bound
from cxstream.scoring.bounds import (
    customer_bytes_bound,
    group_answers_bytes_bound,
    group_keys_bytes_bound,
    interaction_record_bytes,
    score_record_bytes,
)
from cxstream.scoring.customer import StateRules
from cxstream.scoring.windows import window_specs
from cxstream.streams.ingest.deadletter_record import RECORD_HEADROOM
from cxstream.streams.settings import ENV_PREFIX, Settings


@dataclass(frozen=True)
class ValueBound:
    """The most bytes one value of a store takes, and the settings that decide it."""

    store: str
    max_bytes: int
    settings: tuple[str, ...] = ()


def value_bounds(settings: Settings, rules: RulesConfig,
                 topics: Iterable[str] | None = None) -> list[ValueBound]:
    """Every bounded store's largest value under ``settings`` and ``rules`` (``topics``:
    the lexicons' topics, when they are read already)."""
    windows = len(window_specs(settings.long_window_days))
    state = StateRules(**{name: getattr(settings, name) for name in StateRules.model_fields})
    if topics is None:
        topics = load_tagger(settings.lexicons_dir).topics
    context = ("the rules file's context_interactions", f"{ENV_PREFIX}LEXICONS_DIR")
    return [
        ValueBound("customers: a customer's hot state",
                   customer_bytes_bound(state, windows,
                                        predicted=settings.model_file is not None),
                   tuple(f"{ENV_PREFIX}{name.upper()}" for name in (
                       "seen_event_ids_kept", "negative_signals_kept",
                       "recent_scores_kept", "recent_interactions_kept"))),
        ValueBound("group_partials: a group's recent answers",
                   group_answers_bytes_bound(state.group_answers_kept),
                   (f"{ENV_PREFIX}GROUP_ANSWERS_KEPT",)),
        ValueBound("group_partials: the group keys of a dimension",
                   group_keys_bytes_bound(settings.max_group_keys),
                   (f"{ENV_PREFIX}MAX_GROUP_KEYS",)),
        ValueBound("customers: one history record",
                   max(score_record_bytes(), interaction_record_bytes())),
        ValueBound("survey_memory: a customer's survey memory",
                   memory_bytes_bound(rules.surveys), ("the rules file's surveys.triggers",)),
        ValueBound("cx.alerts: an alert", alert_bytes_bound(rules, topics), context),
        ValueBound("alert_cases: an alert case", case_bytes_bound(rules, topics), context),
        ValueBound("issue_windows: an issue window", issue_window_bytes_bound(rules)),
        ValueBound("issue_priorities: a customer's marks in one window",
                   priority_mark_bytes_bound(settings.max_group_keys),
                   (f"{ENV_PREFIX}MAX_GROUP_KEYS",)),
        ValueBound("deadletter_marks: a mark", deadletter_mark_bytes()),
    ]


def request_limit(settings: Settings) -> int:
    """The most bytes a table value may take: the producer's request limit less room for
    the key, headers and record overhead."""
    return settings.producer_max_request_bytes - RECORD_HEADROOM


def bound_problems(bounds: list[ValueBound], limit: int) -> list[str]:
    """One line per store whose largest value does not fit under ``limit``."""
    return [f"{bound.store} can reach {bound.max_bytes} bytes, over the "
            f"{limit} a changelog record may take ({ENV_PREFIX}PRODUCER_MAX_REQUEST_BYTES "
            f"less {RECORD_HEADROOM} for the key and headers): lower "
            + (", ".join(bound.settings) or "the caps")
            + f" or raise {ENV_PREFIX}PRODUCER_MAX_REQUEST_BYTES"
            for bound in bounds if bound.max_bytes > limit]
