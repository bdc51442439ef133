"""The most bytes an alert, an alert case, an issue window and a priority mark can take,
computed from the rules and settings (no Faust).

The counting rules are scoring.bounds's: a contract string takes at most CHAR_BYTES per
character, an integer INT_BYTES, a float FLOAT_BYTES, with its quotes and comma. Each
bound is tested against the worst value the real code builds (tests/unit/
test_alert_bounds.py), and checked at start-up against the producer's request limit
(streams.table_limits).
"""

from __future__ import annotations

from collections.abc import Iterable

from cxstream.alerts.config import RulesConfig
from cxstream.alerts.group_rules import CUSTOMERS_KEPT, EXAMPLES_KEPT, SIGNAL_COMMENT_CHARS
from cxstream.alerts.lifecycle import HISTORY_BYTES, NOTE_MAX
from cxstream.schemas.events import MAX_TEXT_CHARS
from cxstream.scoring.bounds import (
    FLOAT_BYTES,
    ID,
    ID_CHARS,
    LANGUAGE_CHARS,
    NUMBER,
    PREFIX_BYTES,
    interaction_record_bytes,
    score_record_bytes,
    text_bytes,
    word_bytes,
)
from cxstream.scoring.prediction import REASONS_KEPT

#: a key with its quotes and colon
KEY = word_bytes(24) + 1
TIME = word_bytes(40) + 1
#: a record of the history as an object (its field names added to the list encoding)
RECORD_NAMES = 9 * KEY
#: the low-experience reasons: one per survey and one for the signals, each a short
#: sentence of numbers and known words
REASONS = 2 + 4 * (word_bytes(80) + 1)


def topics_bytes(topics: Iterable[str]) -> int:
    """Every topic of the lexicons at once, as a JSON list."""
    return 2 + sum(text_bytes(len(topic)) + 1 for topic in topics)


def summary_bytes(topics: Iterable[str]) -> int:
    """The longest summary a rule writes: up to four names of the contract, the reasons
    or topics, and the folded count."""
    return text_bytes(4 * ID_CHARS + 400) + topics_bytes(topics)


def reason_bytes(topics: Iterable[str]) -> int:
    """The figures of the rule that fired: names of the contract, a post's first 500
    characters, its topics, the reasons and the folded rules."""
    return 2 + 16 * KEY + 4 * ID + text_bytes(500) + topics_bytes(topics) + REASONS \
        + 12 * NUMBER + word_bytes(80)


def customer_context_bytes(rules: RulesConfig, topics: Iterable[str]) -> int:
    """alerts.building.customer_context: the profile, the quadrant and reasons, the
    latest answer per survey, the last ``context_interactions`` answers and
    interactions, the comment that triggered the alert and its topics."""
    keep = rules.context_interactions
    answer = score_record_bytes() + RECORD_NAMES + 1
    interaction = interaction_record_bytes() + RECORD_NAMES + 1
    return (2 + 12 * KEY + FLOAT_BYTES + 3 * ID + 2 * word_bytes(16) + REASONS + NUMBER
            + 3 * (word_bytes(4) + 1 + answer) + 2 + keep * answer + 2
            + keep * interaction + text_bytes(MAX_TEXT_CHARS) + word_bytes(LANGUAGE_CHARS)
            + topics_bytes(topics) + prediction_bytes())


def prediction_bytes() -> int:
    """A customer's prediction as the API shows it (scoring.prediction.prediction_json):
    probability, model version, time, and REASONS_KEPT reasons of a feature (a channel's
    share at the longest), its value and its text (the channel's name in a sentence)."""
    reason = (2 + 3 * KEY + text_bytes(len("channel_share:") + ID_CHARS) + 1 + FLOAT_BYTES
              + 1 + text_bytes(ID_CHARS + 40) + 1)
    return 2 + 4 * KEY + FLOAT_BYTES + 1 + word_bytes(12) + 1 + TIME + 2 + REASONS_KEPT * reason


def signal_bytes() -> int:
    """One example signal (alerts.group_rules.Signal as JSON)."""
    return (2 + 8 * KEY + word_bytes(10) + 4 * ID + TIME + word_bytes(64)
            + text_bytes(SIGNAL_COMMENT_CHARS))


def group_context_bytes() -> int:
    """A recurring issue's context: the customers and examples of its window."""
    return 2 + 2 * KEY + 2 + CUSTOMERS_KEPT * ID + 2 + EXAMPLES_KEPT * (signal_bytes() + 1)


def drop_context_bytes() -> int:
    """A group drop's context: the current and baseline scores (up to 8 figures each),
    the baseline's size and the drivers (streams.groups.drivers: the dimension, the
    summary of up to 3 names, 3 figures, and 5 drivers of a name and 4 figures)."""
    scores = 2 + 8 * (KEY + NUMBER)
    driver = 2 + 5 * KEY + ID + 4 * NUMBER
    drivers = (2 + 5 * KEY + word_bytes(16) + text_bytes(3 * (ID_CHARS + 12))
               + 3 * NUMBER + 2 + 5 * (driver + 1))
    return 2 + 4 * KEY + 2 * scores + NUMBER + drivers


def alert_bytes_bound(rules: RulesConfig, topics: Iterable[str] = ()) -> int:
    """One alert (schemas.outputs.Alert as JSON), of any rule: ids and names of the
    contract, the summary, the reason, the larger of a customer's and a group's context,
    times, counts, and a resolution and notice reason a person wrote."""
    topics = list(topics)
    context = max(customer_context_bytes(rules, topics), group_context_bytes(),
                  drop_context_bytes())
    return (2 + 22 * KEY + 5 * ID + 4 * word_bytes(64) + 4 * TIME + 3 * NUMBER
            + 2 * (text_bytes(NOTE_MAX) + 1) + summary_bytes(topics)
            + reason_bytes(topics) + context)


def change_fixed_bytes() -> int:
    """One change of a case's history without its reason: action, actor, time, and the
    details a change carries (severities, owners, teams, a category, a time, counts)."""
    return 2 + 5 * KEY + word_bytes(16) + ID + TIME + 2 + 8 * KEY + 4 * ID + 4 * NUMBER


def case_bytes_bound(rules: RulesConfig, topics: Iterable[str] = ()) -> int:
    """An alert case (schemas.outputs.AlertCase as JSON, the value of
    ``cx.alert-lifecycle``): its alert, status, owner and team, deadlines, the resolution
    a person wrote, and its history, which alerts.lifecycle keeps under HISTORY_BYTES
    (whatever one change holds, the newest is always kept)."""
    topics = list(topics)
    newest = change_fixed_bytes() + max(text_bytes(NOTE_MAX), summary_bytes(topics))
    return (PREFIX_BYTES + 2 + 16 * KEY + alert_bytes_bound(rules, topics)
            + 4 * word_bytes(16) + 2 * ID + NUMBER + 6 * TIME + text_bytes(NOTE_MAX)
            + 2 + max(HISTORY_BYTES, newest))


def issue_window_bytes_bound(rules: RulesConfig) -> int:
    """An issue window (alerts.group_rules.IssueWindow): its customers and examples,
    the alert it raised, and offsets."""
    return (PREFIX_BYTES + 2 + 8 * KEY + 2 + CUSTOMERS_KEPT * ID + 2
            + EXAMPLES_KEPT * (signal_bytes() + 1) + alert_bytes_bound(rules)
            + 3 * NUMBER + word_bytes(5))


def priority_mark_bytes_bound(max_group_keys: int) -> int:
    """A customer's marks in one priorities window (alerts.priorities.Marks): one entry
    per issue they signalled, at most ``max_group_keys`` issues per window and one
    "(other)" per kind beyond them, of four figures (answered, value, top band,
    predicted at risk)."""
    figures = 2 + 4 * (FLOAT_BYTES + 1)
    entry = text_bytes(len("touchpoint:") + ID_CHARS) + 1 + figures
    other = word_bytes(len("touchpoint:(other)")) + 1 + figures
    return PREFIX_BYTES + 2 + max_group_keys * entry + 2 * other


def deadletter_mark_bytes() -> int:
    """A dead-letter mark (streams.ingest.deadletter_once.Mark): two offsets."""
    return 2 + 2 * KEY + 2 * NUMBER

