"""The prediction model on a simulated quarter whose truth is known: how well it ranks
and how well it is calibrated, how long training takes, what scoring costs, in one run.

    .venv/bin/python -m bench.prediction [--customers 20000] [--answers 200000]
        [--days 90] [--seed 7] [--scoring-rows 200000]

1. A quarter (--days) of simulated traffic with hidden traits (SimConfig.propensity:
   cli.simulator.propensity), sized so it holds about --answers answers; no incidents,
   no malformed messages, a flat daily rhythm (the same records whatever the hour).
2. Training as ``cxstream model train`` does it (cli.model_training.train), on the
   records' bytes: parse, feature rows in event-time order, fit on the oldest 70 % of the
   answers, calibrate on the next 10 %, evaluate on the latest 20 %. Timed by part.
3. The truth: the same test answers ranked by their simulated propensity (the best any
   model can do on them), and the model's probabilities against the propensities.
4. Scoring: the model file loaded as the worker loads it (scoring.prediction.Model),
   --scoring-rows rows of the test slice scored one by one (feature row built from a
   ledger, probability, reasons), µs per row.

    .venv/bin/python -m bench.prediction --cost [--events 100000] [--customers 10000]

The cost in the worker: bench.throughput's in-process own work (both passes: first
events, then the same customers' next events) without and with a model trained on a small
quarter, twice each, alternating so that the machine's drift falls on both; µs per event
in all and in the predict stage (cxstream_own_work_seconds_total), changelog bytes per
event, and the predict stage by purpose (alerts.core_predictions: before answers, for the
rules, after events with signals, the reasons of raised alerts).
"""

from __future__ import annotations

import argparse
import time
import zlib
from datetime import UTC, datetime
from typing import Any

from cxstream.cli.model_training import build_rows, parsed_events, time_split, train
from cxstream.cli.simulator.generator import KINDS, SimConfig, history_inputs, simulate
from cxstream.cli.simulator.population import Kind
from cxstream.scoring.customer import StateRules
from cxstream.scoring.features import Thresholds
from cxstream.scoring.journey import Journey
from cxstream.scoring.prediction import Model
from cxstream.scoring.recompute import RawInput
from cxstream.streams.settings import load_settings

START = datetime(2026, 6, 1, tzinfo=UTC)
SETTINGS = load_settings({})  # the contract's topic names
TOPICS: dict[Kind, str] = {"interactions": SETTINGS.topic_interactions,
                           "feedback": SETTINGS.topic_feedback,
                           "customers": SETTINGS.topic_customers}
KIND_OF_TOPIC = SETTINGS.input_kinds()


def quarter(customers: int, answers: int, days: int, seed: int
            ) -> tuple[list[RawInput], dict[str, float]]:
    """The quarter's records as a topic would hold them, and each answer's propensity by
    event id."""
    per_day = round(answers / KINDS["feedback"] / days)
    config = SimConfig(customers=customers, history_days=days, history_per_day=per_day,
                       duration=1, rate=0.001, incidents=False, malformed_share=0,
                       daily_rhythm=False, propensity=True, seed=seed)
    simulation = simulate(config, START)
    inputs = history_inputs(simulation, TOPICS)
    assert simulation.traits is not None
    truth = {f"f-{seed}-{sequence:08d}": p
             for sequence, p in simulation.traits.truth.items()}
    return inputs, truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--answers", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scoring-rows", type=int, default=200_000)
    parser.add_argument("--cost", action="store_true",
                        help="the worker's own work without and with a model, instead")
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    if args.cost:
        worker_cost(args)
        return
    import numpy as np
    from sklearn.metrics import roc_auc_score

    began = time.perf_counter()
    inputs, truth = quarter(args.customers, args.answers, args.days, args.seed)
    print(f"simulated {len(inputs):,} records ({len(truth):,} answers, {args.customers:,} "
          f"customers, {args.days} days) in {time.perf_counter() - began:.0f} s")
    journey, thresholds = Journey(), Thresholds.of(StateRules())
    began = time.perf_counter()
    file, read = train(inputs, KIND_OF_TOPIC, 65_536, journey, thresholds)
    seconds = time.perf_counter() - began
    ev = file.evaluation
    print(f"\ntraining: {seconds:.1f} s for {read['answers']:,} answers "
          f"({read['events']:,} events): {read['seconds']}; "
          f"{seconds / read['answers'] * 1e6:.1f} µs per answer, so 1,000,000 answers "
          f"take about {seconds / read['answers'] * 1e6:.0f} s")
    print(f"time-split test ({ev['answers']['test']:,} latest answers, low share "
          f"{ev['low_share']:.3f}): AUC {ev['auc']:.3f}, Brier {ev['brier']:.4f}, "
          f"largest decile gap {ev['largest_decile_gap'] * 100:.1f} points")
    print("calibration by decile (predicted / observed, %):")
    for d in ev["deciles"]:
        print(f"  {d['predicted'] * 100:6.1f} / {d['observed'] * 100:6.1f}  "
              f"({d['answers']:,} answers)")

    model = Model(file)
    refused: Any = {}
    from collections import Counter
    events = parsed_events(inputs, KIND_OF_TOPIC, 65_536, Counter())
    rows = build_rows(events, model.vocabulary, journey, thresholds, keep_ids=True)
    del refused
    split = time_split(len(rows))
    width = len(rows.names)
    x = np.frombuffer(rows.x, dtype=np.float64).reshape(-1, width)[split.test]
    low = np.frombuffer(rows.low, dtype=np.uint8)[split.test]
    ids = rows.event_ids[split.test]
    propensity = np.array([truth[i] for i in ids])
    predicted = np.array([model.probability(list(row)) for row in x])
    print(f"\ntruth on the same test answers: the propensities' own AUC "
          f"{roc_auc_score(low, propensity):.3f} (the best any model can do); the model's "
          f"{roc_auc_score(low, predicted):.3f}")
    above = propensity > np.median(propensity)
    ranks = np.corrcoef(np.argsort(np.argsort(predicted)),
                        np.argsort(np.argsort(propensity)))[0, 1]
    print(f"the model ranking answers by propensity: AUC "
          f"{roc_auc_score(above, predicted):.3f} (propensity above its median as the "
          f"label); rank correlation {ranks:.3f}")
    _scoring_cost(model, events, journey, thresholds, args.scoring_rows)


def _scoring_cost(model: Model, events: list[Any], journey: Journey,
                  thresholds: Thresholds, count: int) -> None:
    """µs per interaction, as the worker does it, over the whole quarter of the first
    customers up to about ``count`` interactions (ledgers as they grow): the ledger
    noting it, the probability after it in one pass (scoring.scorer: what the worker runs
    per batch), and, for comparison, the feature row, its probability and its reasons
    (what is computed when a prediction is shown)."""
    from cxstream.schemas.events import Interaction
    from cxstream.scoring.features import note_interaction
    from cxstream.scoring.plain_customer import Customer
    from cxstream.scoring.prediction import Predictor

    predictor = Predictor(model, journey, thresholds)
    share = count / max(1, sum(1 for _, _, e in events if isinstance(e, Interaction)))
    chosen = [(at, e) for at, _, e in events if isinstance(e, Interaction)
              and zlib.crc32(e.customer_id.encode()) % 10_000 < share * 10_000]
    states: dict[str, Customer] = {}
    timings = {"ledger": 0.0, "one-pass probability": 0.0, "feature row": 0.0,
               "row probability": 0.0, "reasons": 0.0}
    clock = time.perf_counter
    for moment, event in chosen:
        state = states.get(event.customer_id)
        if state is None:
            state = states[event.customer_id] = Customer(event.customer_id)
            state.profile = ("smb", 1_000.0, None, None, 0)
        began = clock()
        note_interaction(state.ledger, moment, event.channel, event.touchpoint,
                         event.outcome, event.wait_seconds, event.sentiment, thresholds)
        noted = clock()
        predictor.probability(state, moment, "nps")
        scored = clock()
        row = predictor.row(state, moment)
        built = clock()
        model.probability(row)
        probable = clock()
        model.reasons(row)
        done = clock()
        for name, seconds in zip(timings, (noted - began, scored - noted, built - scored,
                                           probable - built, done - probable), strict=True):
            timings[name] += seconds
    n = max(1, len(chosen))
    print(f"\nscoring {len(chosen):,} interactions of {len(states):,} customers over the "
          "quarter, one by one (µs each): " + ", ".join(
              f"{name} {seconds / n * 1e6:.2f}" for name, seconds in timings.items()))


def worker_cost(args: argparse.Namespace) -> None:
    """The in-process own work without and with a model, twice each, alternating."""
    import tempfile
    from pathlib import Path

    from bench.throughput import bench_records, fold_alone, topics_for
    from cxstream.streams.settings import load_settings

    inputs, _ = quarter(2_000, 20_000, 30, args.seed)
    file, _ = train(inputs, KIND_OF_TOPIC, 65_536, Journey(), Thresholds.of(StateRules()))
    customers = min(args.customers, args.events // 2)
    records = bench_records(args.events, customers)
    second = [record for record in bench_records(args.events, customers, seed=6,
                                                 later=True) if record.kind != "customers"]
    events = len(records) + len(second)
    runs: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
    stages: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    made: list[dict[str, list[float]]] = []  # per run with a model: purpose -> [n, s]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.json"
        path.write_text(file.model_dump_json())
        for with_model in (False, True, False, True):
            extra = {"model_file": str(path)} if with_model else {}
            settings = load_settings({}, partitions="4", **topics_for("bench"),
                                     allowed_lateness_seconds=str(30 * 86_400), **extra)
            cores: list[Any] = []
            passes = fold_alone(settings, [records, second], cores)
            if with_model:
                made.append(cores[0].writer.core.predictions.made)
            seconds = sum(result[0] for result in passes)
            written = sum(result[1] for result in passes)
            predict = sum(result[3]["predict"] for result in passes)
            stages[with_model].append({stage: 1e6 * sum(r[3][stage] for r in passes) / events
                                       for stage in passes[0][3]})
            runs[with_model].append((1e6 * seconds / events, 1e6 * predict / events,
                                     written / events))
            print(f"model {'on ' if with_model else 'off'}: {1e6 * seconds / events:.1f} "
                  f"µs/event, predict stage {1e6 * predict / events:.2f} µs/event, "
                  f"{written / events:,.0f} changelog bytes/event")
    best = {key: min(run[0] for run in found) for key, found in runs.items()}
    print(f"\n{events:,} events ({customers:,} customers), best of two: without a model "
          f"{best[False]:.1f} µs/event, with {best[True]:.1f} (+{best[True] - best[False]:.1f}"
          f"); predict stage {min(run[1] for run in runs[True]):.2f} µs/event; changelog "
          f"bytes/event {runs[False][0][2]:,.0f} -> {runs[True][0][2]:,.0f}")
    print("each stage, µs/event, without / with a model (each run):")
    for stage in stages[False][0]:
        print(f"  {stage:>10}: " + "  ".join(
            f"{off[stage]:.1f} / {on[stage]:.1f}"
            for off, on in zip(stages[False], stages[True], strict=True)))
    print("the predict stage by purpose (alerts.core_predictions), each run with a model: "
          "predictions per event, µs each, µs per event:")
    for purpose in made[0]:
        print(f"  {purpose:>10}: " + "  ".join(
            f"{n / events:.3f}, {1e6 * seconds / max(1, n):.1f}, {1e6 * seconds / events:.2f}"
            for n, seconds in (run[purpose] for run in made)))


if __name__ == "__main__":
    main()
