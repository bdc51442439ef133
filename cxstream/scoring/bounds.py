"""The most bytes a table value can take, computed from the settings (no Faust).

Every table value that grows with traffic has caps; these functions turn the caps into
the largest encoded size the value can reach, so that a worker refuses to start with
settings under which a value could outgrow the producer's request limit (a record the
producer refuses stops its partition for good: the same batch fails after a restart).

Counting rules, for every bound here: a string of the contract (an id, a name, free
text) may hold any character, and orjson writes a control character as \\u00XX, so a
character takes at most CHAR_BYTES; an integer (a time in microseconds, an offset) takes
at most INT_BYTES; a float at most FLOAT_BYTES; every element of a list or object is
counted with its brackets, quotes and comma.
"""

from __future__ import annotations

from cxstream.scoring.customer import TEXT_KEPT, StateRules

CHAR_BYTES = 6
INT_BYTES = 20  # -9223372036854775808
FLOAT_BYTES = 24  # orjson's shortest round trip, with sign and exponent
#: the longest id and name the contract takes, and the longest language tag
ID_CHARS, LANGUAGE_CHARS = 128, 35
#: b"<partition>|" before every value
PREFIX_BYTES = INT_BYTES + 1


def text_bytes(chars: int) -> int:
    """The most bytes a string of ``chars`` characters takes in JSON, quotes included."""
    return 2 + CHAR_BYTES * chars


def word_bytes(chars: int) -> int:
    """A string of known ASCII words (a survey, a rule, a letter key), quotes included."""
    return 2 + chars


ID = text_bytes(ID_CHARS) + 1  # with its comma
NUMBER = INT_BYTES + 1
#: an alert cooldown (alerts.cooldowns.OpenAlert as JSON): id, rule, severity, three times as
#: RFC 3339 text, occurrences, and the keys
OPEN_ALERT_BYTES = 2 + 7 * 20 + word_bytes(64) + 2 * word_bytes(24) + 3 * word_bytes(40) + NUMBER


def score_record_bytes() -> int:
    """One answer in the history: id, survey, score, time, channel, touchpoint, comment
    (TEXT_KEPT characters), language."""
    return 2 + 3 * ID + word_bytes(4) + 2 * NUMBER + text_bytes(TEXT_KEPT) + \
        word_bytes(LANGUAGE_CHARS) + 8


def interaction_record_bytes() -> int:
    """One interaction in the history: id, time, channel, touchpoint, outcome, wait,
    sentiment, text (TEXT_KEPT characters), negative."""
    return 2 + 3 * ID + NUMBER + word_bytes(9) + 2 * (FLOAT_BYTES + 1) + \
        text_bytes(TEXT_KEPT) + 6 + 8


def customer_bytes_bound(rules: StateRules, windows: int, groups_per_answer: int = 5,
                         rules_with_cooldowns: int = 3, predicted: bool = False) -> int:
    """The hot part of one customer (scoring.plain_codec.encode) at every cap: the profile,
    the latest answer per survey, ``negative_signals_kept`` signal times,
    ``seen_event_ids_kept`` remembered ids with their offsets, the history slots, the
    answer counted per window and survey with its groups, one cooldown per rule, and with
    a prediction model (``predicted``) the ledger and the latest prediction."""
    keys = 11 * word_bytes(2) + 2
    profile = 2 + 3 * ID + FLOAT_BYTES + 1 + NUMBER
    last_scores = 3 * (word_bytes(4) + 1 + 2 + 2 * NUMBER + ID)
    signals = 2 + rules.negative_signals_kept * NUMBER
    applied = 2 + 3 * (word_bytes(1) + 1 + NUMBER)
    slots = 2 * (word_bytes(1) + 3) + (rules.recent_scores_kept
                                       + rules.recent_interactions_kept) * 6
    remembered = 2 + rules.seen_event_ids_kept * (text_bytes(2 + ID_CHARS) + 1 + NUMBER)
    group = 2 + word_bytes(12) + 1 + ID
    counted = 2 + windows * (word_bytes(16) + 3 + 3 * (
        word_bytes(4) + 1 + 2 + 3 * NUMBER + 2 + groups_per_answer * group))
    cooldowns = 2 + word_bytes(4) + 3 + rules_with_cooldowns * (word_bytes(24) + 1
                                                                + OPEN_ALERT_BYTES)
    model = prediction_bytes_bound() if predicted else 0
    return (PREFIX_BYTES + keys + NUMBER + ID + profile + last_scores + signals + applied
            + NUMBER + slots + remembered + counted + cooldowns + model)


def prediction_bytes_bound() -> int:
    """The model's part of a customer (scoring.features, scoring.prediction): the ledger's
    LEDGER_DAYS + 1 days of seven counts, CHANNELS_PER_DAY channels and one other with
    their counts, and a touchpoint; the prediction: probability, version, time and
    REASONS_KEPT reasons of a feature name (a channel's at the longest) and a value."""
    from cxstream.scoring.features import CHANNELS_PER_DAY, LEDGER_DAYS
    from cxstream.scoring.prediction import REASONS_KEPT

    day = 2 + 7 * NUMBER + 2 + (CHANNELS_PER_DAY + 1) * (ID + NUMBER) + ID
    ledger = 2 + (LEDGER_DAYS + 1) * day
    reason = 2 + text_bytes(len("channel_share:") + ID_CHARS) + 1 + FLOAT_BYTES + 1
    prediction = 2 + FLOAT_BYTES + 1 + word_bytes(12) + 1 + NUMBER + 2 + REASONS_KEPT * reason
    return 2 * word_bytes(1) + 2 + ledger + prediction


def group_answers_bytes_bound(kept: int) -> int:
    """A group's recent answers in one partition (scoring.group_answers): ``kept``
    answers of time, event id, customer id, survey, score, comment (TEXT_KEPT
    characters) and language."""
    answer = 2 + NUMBER + 2 * ID + word_bytes(4) + 1 + NUMBER + text_bytes(TEXT_KEPT) + 1 + \
        word_bytes(LANGUAGE_CHARS)
    return 2 + kept * (answer + 1)


def group_keys_bytes_bound(cap: int) -> int:
    """The keys one partition admits in one dimension (scoring.groups.GroupKeys): ``cap``
    names, or in a part dimension half as many keys of a name, a part and the name's
    length (scoring.groups.part_key)."""
    names = 2 + cap * (text_bytes(ID_CHARS) + 1)
    parts = 2 + max(1, cap // 2) * (text_bytes(3 + 1 + 2 * ID_CHARS) + 1)
    return max(names, parts)
