"""The prediction model's parts: features without a leak, the model file, the live
evaluation (scoring.features, scoring.prediction, scoring.prediction_live,
cli.model_training)."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxstream.cli.model_training import build_rows, fit, parsed_events, vocabulary_seen
from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.schemas.parsing import InputKind
from cxstream.scoring.customer import StateRules
from cxstream.scoring.features import (
    CHANNELS_PER_DAY,
    DAY_US,
    LEDGER_DAYS,
    Thresholds,
    Vocabulary,
    feature_names,
    feature_row,
    note_interaction,
)
from cxstream.scoring.journey import Journey
from cxstream.scoring.plain_customer import to_us
from cxstream.scoring.prediction import Model, ModelFile, ModelMismatch, calibrated
from cxstream.scoring.prediction_live import (
    VERSIONS_KEPT,
    WEEKS_KEPT,
    LiveEvaluation,
    WeekTally,
)
from cxstream.scoring.recompute import RawInput

T0 = datetime(2026, 9, 1, tzinfo=UTC)
THRESHOLDS = Thresholds.of(StateRules())
JOURNEY = Journey()
VOCABULARY = Vocabulary(("consumer", "smb"), ("phone", "web"), tuple(JOURNEY.order()))


def _interaction(n: int, at: datetime, outcome: str = "success", channel: str = "web",
                 customer: str = "c-1") -> Interaction:
    return Interaction(event_id=f"i-{n}", customer_id=customer, occurred_at=at,
                       channel=channel, touchpoint="delivery", outcome=outcome)


def _answer(n: int, at: datetime, score: int, survey: str = "nps",
            customer: str = "c-1") -> Feedback:
    return Feedback(event_id=f"f-{n}", customer_id=customer, occurred_at=at, survey=survey,
                    score=score, channel="email", touchpoint="delivery")


def _timed(events: list[object]) -> list[tuple[int, int, object]]:
    timed = []
    for number, event in enumerate(events):
        moment = (event.updated_at if isinstance(event, CustomerProfile)  # type: ignore[attr-defined]
                  else event.occurred_at)  # type: ignore[attr-defined]
        timed.append((to_us(moment), number, event))
    return sorted(timed, key=lambda item: (item[0], item[1]))


# -- features ----------------------------------------------------------------------------

event_plan = st.lists(st.tuples(st.booleans(), st.integers(0, 40 * 24),
                                st.sampled_from(["success", "failure", "abandoned"]),
                                st.integers(0, 10)), min_size=2, max_size=40)


@settings(max_examples=60, deadline=None)
@given(plan=event_plan, cut_hours=st.integers(1, 40 * 24), seed=st.integers(0, 1000))
def test_rows_before_a_moment_do_not_change_whatever_comes_after_it(
        plan: list[tuple[bool, int, str, int]], cut_hours: int, seed: int) -> None:
    """Shuffling, changing or adding events after a moment leaves the rows of every
    answer before it as they were: a row is built from the past only."""
    cut = T0 + timedelta(hours=cut_hours)
    events: list[object] = []
    for n, (is_answer, hours, outcome, score) in enumerate(plan):
        at = T0 + timedelta(hours=hours, minutes=n)
        events.append(_answer(n, at, score) if is_answer else _interaction(n, at, outcome))
    before = [e for e in events if e.occurred_at < cut]  # type: ignore[attr-defined]
    after = [e for e in events if e.occurred_at >= cut]  # type: ignore[attr-defined]
    rng = random.Random(seed)
    changed = [_interaction(1000 + n, e.occurred_at, "escalated", "phone")  # type: ignore[attr-defined]
               if rng.random() < 0.5 else e for n, e in enumerate(after)]
    changed += [_interaction(2000, cut + timedelta(minutes=1), "failure")]
    rng.shuffle(changed)

    def rows_before_cut(stream: list[object]) -> list[list[float]]:
        rows = build_rows(_timed(stream), VOCABULARY, JOURNEY, THRESHOLDS)
        width = len(rows.names)
        return [list(rows.x[i * width:(i + 1) * width]) for i in range(len(rows))
                if rows.at[i] < to_us(cut)]

    assert rows_before_cut(before + after) == rows_before_cut(before + changed)


def test_a_row_counts_the_week_and_the_earlier_answers() -> None:
    events: list[object] = [
        CustomerProfile(customer_id="c-1", segment="smb", value=1200.0, updated_at=T0),
        *[_interaction(n, T0 + timedelta(days=24, hours=n), "failure") for n in range(3)],
        _interaction(5, T0 + timedelta(days=1), "abandoned"),  # 27 days before: 30d only
        _answer(6, T0 + timedelta(days=10), 3),
        _answer(7, T0 + timedelta(days=28), 9),
    ]
    rows = build_rows(_timed(events), VOCABULARY, JOURNEY, THRESHOLDS)
    row = dict(zip(rows.names, rows.x[len(rows.names):], strict=True))  # the second answer
    assert row["failures_7d"] == 3 and row["abandoned_7d"] == 0
    assert row["negative_30d"] == 4 and row["interactions_30d"] == 4
    assert row["nps_low"] == 1.0 and row["nps_last"] == pytest.approx(0.3)
    assert row["days_since_answer"] == pytest.approx(18)
    assert row["segment:smb"] == 1.0 and row["channel_share:web"] == 1.0
    assert row["stage:delivery"] == 1.0
    assert list(rows.low) == [1, 0]  # 3 is a detractor, 9 is not


def test_the_ledger_stays_bounded_whatever_the_customer_does() -> None:
    ledger: list[list[object]] = []
    start = to_us(T0)
    for n in range(5_000):  # 100 days, 50 interactions a day on 20 channels
        note_interaction(ledger, start + (n // 50) * DAY_US + n, f"channel-{n % 20}",
                         "support", "failure", None, None, THRESHOLDS)
    assert len(ledger) == LEDGER_DAYS + 1
    assert all(len(bucket[7]) <= CHANNELS_PER_DAY + 1 for bucket in ledger)  # type: ignore[arg-type]
    assert sum(bucket[2] for bucket in ledger) == 50 * (LEDGER_DAYS + 1)  # type: ignore[misc]


# -- training and the model file ---------------------------------------------------------

def _synthetic(count: int = 3_000, seed: int = 3) -> list[RawInput]:
    """Customers whose failures make their answers low."""
    rng = random.Random(seed)
    raws: list[RawInput] = []

    def add(topic: str, event: object) -> None:
        body = event.model_dump_json().encode()  # type: ignore[attr-defined]
        raws.append(RawInput(topic, 0, len(raws), 0.0,
                             event.customer_id.encode(), body))  # type: ignore[attr-defined]

    for n in range(count):
        customer = f"c-{n % 300}"
        at = T0 + timedelta(hours=n)
        failing = rng.random() < 0.3
        for k in range(3 if failing else 1):
            add("i", _interaction(10 * n + k, at - timedelta(hours=1 + k),
                                  "failure" if failing else "success", customer=customer))
        low = rng.random() < (0.7 if failing else 0.1)
        add("f", _answer(n, at, rng.choice([1, 3, 5]) if low else rng.choice([9, 10]),
                         customer=customer))
    return raws


KINDS = {"i": InputKind.INTERACTION, "f": InputKind.FEEDBACK, "c": InputKind.CUSTOMER}


@pytest.fixture(scope="module")
def trained() -> tuple[ModelFile, object, object]:
    events = parsed_events(_synthetic(), KINDS, 65_536, Counter())
    vocabulary = vocabulary_seen(events, JOURNEY)
    rows = build_rows(events, vocabulary, JOURNEY, THRESHOLDS)
    file, tested = fit(rows, vocabulary)
    return file, rows, tested


def test_the_model_file_scores_as_the_fitted_model_does(trained: tuple) -> None:  # type: ignore[type-arg]
    file, rows, tested = trained
    model = Model(file)
    width = len(rows.names)
    start = len(rows) - len(tested)
    for i in range(start, len(rows), 97):
        row = list(rows.x[i * width:(i + 1) * width])
        assert model.probability(row) == pytest.approx(float(tested[i - start]), abs=1e-9)
    assert file.evaluation["auc"] > 0.7  # failures make answers low here
    assert len(file.evaluation["deciles"]) == 10


def test_a_failing_customer_gets_the_failures_as_a_reason(trained: tuple) -> None:  # type: ignore[type-arg]
    model = Model(trained[0])
    ledger: list[list[object]] = []
    at = to_us(T0 + timedelta(days=3))
    quiet = feature_row(ledger, {}, None, None, at, "nps", model.vocabulary, JOURNEY,
                        THRESHOLDS)
    for n in range(3):
        note_interaction(ledger, at - (n + 1) * 3_600_000_000, "web", "delivery", "failure",
                         None, None, THRESHOLDS)
    failing = feature_row(ledger, {}, None, None, at, "nps", model.vocabulary, JOURNEY,
                          THRESHOLDS)
    assert model.probability(failing) > model.probability(quiet)
    names = [name for name, _ in model.reasons(failing)]
    assert "failures_7d" in names


def test_a_model_of_another_feature_version_is_refused(trained: tuple, tmp_path: Path
                                                       ) -> None:  # type: ignore[type-arg]
    file = trained[0]
    good = tmp_path / "model.json"
    good.write_text(file.model_dump_json())
    assert Model.load(good).version == file.version()
    old = tmp_path / "old.json"
    old.write_text(json.dumps({**file.model_dump(), "feature_version": 0}))
    with pytest.raises(ModelMismatch, match=r"features are version 0.*retrain"):
        Model.load(old)
    renamed = tmp_path / "renamed.json"
    renamed.write_text(json.dumps({**file.model_dump(),
                                   "features": ["x", *file.features[1:]]}))
    with pytest.raises(ModelMismatch, match="differ from the ones this version builds"):
        Model.load(renamed)
    other_format = tmp_path / "format.json"
    other_format.write_text(json.dumps({**file.model_dump(), "format": 2}))
    with pytest.raises(ModelMismatch, match="format 2"):
        Model.load(other_format)


def test_the_version_is_the_content(trained: tuple) -> None:  # type: ignore[type-arg]
    file = trained[0]
    same = ModelFile.model_validate({**file.model_dump(), "trained": {"at": "another day"}})
    other = ModelFile.model_validate({**file.model_dump(), "intercept": file.intercept + 1})
    assert same.version() == file.version() != other.version()


def test_a_mismatched_model_stops_the_settings_naming_it(trained: tuple, tmp_path: Path
                                                         ) -> None:  # type: ignore[type-arg]
    from cxstream.streams.settings import Settings

    old = tmp_path / "old.json"
    old.write_text(json.dumps({**trained[0].model_dump(), "feature_version": 0}))
    with pytest.raises(ValueError, match="model_file") as raised:
        Settings(model_file=old)
    assert "retrain" in str(raised.value)


@given(st.lists(st.floats(0, 1), min_size=2, max_size=20, unique=True), st.floats(-1, 2))
def test_calibration_interpolates_and_stays_flat_outside(xs: list[float], p: float) -> None:
    import numpy as np

    xs = sorted(xs)
    ys = [x / 2 for x in xs]
    assert calibrated(xs, ys, p) == pytest.approx(float(np.interp(p, xs, ys)), abs=1e-12)


# -- live evaluation ---------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 99), st.booleans()), min_size=2, max_size=300))
def test_the_binned_auc_and_brier_are_the_exact_ones_on_bin_values(
        answers: list[tuple[int, bool]]) -> None:
    from sklearn.metrics import brier_score_loss, roc_auc_score

    tally = WeekTally()
    probabilities = [(slot + 0.5) / 100 for slot, _ in answers]
    lows = [low for _, low in answers]
    for p, low in zip(probabilities, lows, strict=True):
        tally.add(p, low)
    if len(set(lows)) < 2:
        assert tally.auc() is None
    else:
        assert tally.auc() == pytest.approx(roc_auc_score(lows, probabilities))
    assert tally.brier() == pytest.approx(brier_score_loss(lows, probabilities))
    assert sum(d["answers"] for d in tally.deciles()) == len(answers)


def test_the_live_evaluation_keeps_its_bounds() -> None:
    live = LiveEvaluation()
    for version in range(VERSIONS_KEPT + 2):
        for week in range(WEEKS_KEPT + 5):
            live.add(f"v{version}", to_us(T0 + timedelta(weeks=week)), 0.3, week % 2 == 0)
    assert list(live.weeks) == [f"v{n}" for n in range(2, VERSIONS_KEPT + 2)]
    assert all(len(weeks) == WEEKS_KEPT for weeks in live.weeks.values())
    latest = live.latest(f"v{VERSIONS_KEPT + 1}")
    assert latest is not None and latest[0] == max(live.weeks[f"v{VERSIONS_KEPT + 1}"])


def test_feature_names_follow_the_vocabulary() -> None:
    names = feature_names(VOCABULARY)
    assert names[-len(JOURNEY.order()):] == [f"stage:{s}" for s in JOURNEY.order()]
    assert len(set(names)) == len(names)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.sampled_from(["v1", "v2"]),
                          st.integers(0, 20), st.floats(0, 1), st.booleans()),
                max_size=200))
def test_workers_tallies_add_up_to_the_tally_of_all_answers(
        answers: list[tuple[int, str, int, float, bool]]) -> None:
    """Each worker counts the answers it folded; added up (through their JSON, as the
    API gathers them) they are the tally one worker would have kept of all."""
    from cxstream.scoring.prediction_live import merged

    workers = [LiveEvaluation(), LiveEvaluation()]
    whole = LiveEvaluation()
    for worker, version, week, p, low in answers:
        at = to_us(T0 + timedelta(weeks=week))
        workers[worker].add(version, at, p, low)
        whole.add(version, at, p, low)
    total = merged([json.loads(json.dumps(w.to_json())) for w in workers])
    report, expected = total.report(), whole.report()
    assert report.keys() == expected.keys()
    for version, weeks in expected.items():
        assert report[version].keys() == weeks.keys()
        for week, figures in weeks.items():
            got = report[version][week]
            assert (got["answers"], got["lows"], got["auc"]) == (
                figures["answers"], figures["lows"], figures["auc"])
            assert got["brier"] == pytest.approx(figures["brier"], abs=1e-4)


def _random_model(seed: int = 11) -> Model:
    from cxstream.scoring.features import FEATURE_VERSION
    from cxstream.scoring.prediction import MODEL_FORMAT

    rng = random.Random(seed)
    vocabulary = Vocabulary(("consumer", "smb"), ("phone", "web"), tuple(JOURNEY.order()))
    names = feature_names(vocabulary)
    return Model(ModelFile(
        format=MODEL_FORMAT, feature_version=FEATURE_VERSION, features=names,
        vocabulary=vocabulary.as_json(), weights=[rng.uniform(-1, 1) for _ in names],
        intercept=-1.0, means=[rng.uniform(0, 1) for _ in names],
        calibration_x=[0.0, 0.3, 1.0], calibration_y=[0.0, 0.5, 1.0], evaluation={},
        trained={}))


RANDOM_MODEL = _random_model()
ledger_plan = st.lists(st.tuples(
    st.integers(0, 45), st.sampled_from(["web", "phone", "app", "kiosk", "social"]),
    st.sampled_from(["delivery", "checkout", "support", "nowhere"]),
    st.sampled_from([None, "success", "failure", "abandoned", "escalated"]),
    st.one_of(st.none(), st.floats(0, 2_000)), st.one_of(st.none(), st.floats(-1, 1))),
    max_size=60)


@settings(max_examples=150, deadline=None)
@given(plan=ledger_plan,
       answers=st.dictionaries(st.sampled_from(["nps", "csat", "ces"]),
                               st.tuples(st.integers(0, 10), st.integers(-50, 50)),
                               max_size=3),
       value=st.one_of(st.none(), st.floats(-10, 1e7)),
       segment=st.one_of(st.none(), st.sampled_from(["consumer", "smb", "enterprise"])),
       survey=st.sampled_from(["nps", "csat", "ces"]))
def test_the_one_pass_scorer_gives_the_rows_probability(
        trained: tuple, plan: list[tuple], answers: dict[str, tuple[int, int]],  # type: ignore[type-arg]
        value: float | None, segment: str | None, survey: str) -> None:
    """The worker scores without building the row (scoring.scorer): on any state, the
    same probability as the model on the row."""
    from cxstream.scoring.plain_customer import Customer
    from cxstream.scoring.prediction import Predictor

    model = Model(trained[0])
    predictor = Predictor(model, JOURNEY, THRESHOLDS)
    state = Customer("c-1")
    start = to_us(T0)
    for day, channel, touchpoint, outcome, wait, sentiment in plan:
        note_interaction(state.ledger, start + day * DAY_US, channel, touchpoint, outcome,
                         wait, sentiment, THRESHOLDS)
    state.last_scores = {name: (min(score, 5) if name != "nps" else score,
                                start + hours * 3_600_000_000, "f")
                         for name, (score, hours) in answers.items()}
    if value is not None or segment is not None:
        state.profile = (segment or "consumer", value or 0.0, None, None, 0)
    at = start + 40 * DAY_US
    assert predictor.probability(state, at, survey) == pytest.approx(
        model.probability(predictor.row(state, at, survey)), abs=1e-12)


def test_the_model_commands_refuse_bad_arguments_naming_them(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cxstream.cli.main import app

    runner = CliRunner()
    missing = runner.invoke(app, ["model", "report", "--model", str(tmp_path / "none.json")])
    assert missing.exit_code == 2 and "cannot read a model file" in missing.output
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"format": 1, "feature_version": 0}))
    refused = runner.invoke(app, ["model", "report", "--model", str(old)])
    assert refused.exit_code == 2 and "features are version 0" in refused.output
    since = runner.invoke(app, ["model", "train", "--out", str(tmp_path / "m.json"),
                                "--since", "last tuesday", "-b", "127.0.0.1:1"])
    assert since.exit_code == 2 and "--since" in since.output


def test_every_fixed_feature_reads_as_a_sentence() -> None:
    from cxstream.scoring.features import FIXED
    from cxstream.scoring.prediction import CONTEXT, reason_text

    texts = {name: reason_text(name, 3.0) for name in FIXED if name not in CONTEXT}
    assert all(text != name for name, text in texts.items())
    assert texts["failures_7d"] == "3 failed interactions in 7 days"
    assert reason_text("negative_share_30d", 0.25) == "25% of interactions bad in 30 days"
    assert reason_text("stage:delivery", 1.0) == "latest interaction at delivery"
