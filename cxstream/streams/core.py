"""One worker core, built once: the fold, the customer rules, the survey desk and the
priorities over a worker's tables, as the worker, the backtest, the bench and the tests
all run it (``build_core``).

What differs between them is given, not chosen here: the tables (Faust tables or plain
stand-ins), where the outputs and changelog records go, which partitions are owned and
the clocks (the wall clock, or a replay's record time). Everything else, the rules and
their settings, is read from the same ``Settings`` and rules file, so a backtest cannot
leave out a part the worker runs.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cxstream.alerts.comment_tags import TopicTagger, load_tagger
from cxstream.alerts.config import RulesConfig
from cxstream.alerts.customer_alerts import CustomerAlerts, wall_clock
from cxstream.alerts.reactions import AlertReactions
from cxstream.scoring.customer_view import RecentFlags
from cxstream.scoring.features import Thresholds
from cxstream.scoring.fold import FoldRules
from cxstream.scoring.partials_index import PartialsIndex
from cxstream.scoring.prediction import Model, Predictor
from cxstream.scoring.value_bands import ValueIndex
from cxstream.streams.customers.band_refresh import BandsHolder
from cxstream.streams.customers.state_writer import StateWriter
from cxstream.streams.customers.survey_desk import SurveyDesk
from cxstream.streams.groups.segment_drops import SegmentShares, segment_shares
from cxstream.streams.issues.priorities import PriorityBoard
from cxstream.streams.kafka.table_writers import ConfirmedSend, TableWriter
from cxstream.streams.metrics import WorkerMetrics
from cxstream.streams.settings import Settings


@dataclass
class CoreTables:
    """The tables a core reads and writes: Faust tables in a worker, stand-ins with a
    ``data`` store elsewhere (cli.backtest, bench.throughput)."""

    customers: Any  # customer_to_state
    partials: Any  # group_partials
    surveys: Any  # survey_memory
    issues: Any  # issue_priorities
    erased: Any = None  # erased_customers (None: no erasure)


@dataclass
class CorePorts:
    """Where a core's effects go, and what it asks of its surroundings."""

    metrics: WorkerMetrics
    #: the input partitions this worker owns (read at each batch and rebalance)
    owned: Callable[[], set[int]]
    #: every input partition (None: only the owned ones are known)
    partition_count: int | None = None
    #: sends a batch's alerts, signals and survey requests (None: kept nowhere)
    emit: Callable[[list[Any]], Awaitable[None]] | None = None
    #: how the tables are written (None: plain per-key writes, DirectWrites)
    writes: TableWriter | None = None
    #: runs the send of a batch's outputs until Kafka confirms it (None: once)
    confirmed: ConfirmedSend | None = None
    #: the customer rules' clock (event age, alert times)
    now: Callable[[], datetime] = wall_clock
    #: the survey desk's and the priorities' clock (epoch seconds)
    clock: Callable[[], float] = time.time


@dataclass
class Core:
    """A built core: the state writer that runs it, and its parts for the worker's other
    duties (the API, the timers, the cluster's shares)."""

    rules: FoldRules
    config: RulesConfig
    index: ValueIndex
    partials_index: PartialsIndex
    bands: BandsHolder
    customer_alerts: CustomerAlerts
    shares: SegmentShares | None
    surveys: SurveyDesk | None
    priorities: PriorityBoard | None
    writer: StateWriter


def build_customer_alerts(config: RulesConfig, tagger: TopicTagger, bands: BandsHolder,
                          rules: FoldRules, now: Callable[[], datetime] = wall_clock
                          ) -> CustomerAlerts:
    """The customer rules as a worker runs them: flags from the current value bands,
    memoised per state, and ``now`` for event age."""
    return CustomerAlerts(config, tagger, RecentFlags(bands.read, rules.state), now)


def predictor_of(settings: Settings, rules: FoldRules) -> Predictor | None:
    """The configured prediction model, ready for the fold (None: none configured)."""
    if settings.model_file is None:
        return None
    return Predictor(Model.load(settings.model_file), rules.journey,
                     Thresholds.of(rules.state))


def build_core(settings: Settings, config: RulesConfig, tables: CoreTables,
               ports: CorePorts, tagger: TopicTagger | None = None) -> Core:
    """The one way a core is put together (the worker, cli.backtest, bench.throughput
    and the tests)."""
    rules = settings.fold_rules(config.journey)
    index = ValueIndex()
    partials_index = PartialsIndex()
    bands = BandsHolder(settings.high_value_share, settings.high_value_scope,
                        settings.high_value_threshold, index, ports.owned,
                        ports.partition_count, settings.band_min_customers)
    customer_alerts = build_customer_alerts(
        config, tagger or load_tagger(settings.lexicons_dir), bands, rules, ports.now)
    surveys = (SurveyDesk(config.surveys, tables.surveys, ports.metrics, ports.clock)
               if config.surveys.enabled else None)
    priorities = None
    if config.priorities.enabled:
        priorities = PriorityBoard(config.priorities, tables.issues, ports.metrics,
                                   ports.clock, max_keys=settings.max_group_keys,
                                   top_of=bands.is_high_value)
    shares = segment_shares(config, rules.windows, partials_index)
    writer = StateWriter(
        tables.customers, tables.partials, rules, ports.metrics, index,
        AlertReactions(customer_alerts, config, rules.state, note_value=index.update),
        ports.emit, ports.writes, ports.confirmed, tables.erased, bands,
        settings.decoded_cache_bytes, partials_index,
        None if shares is None else shares.outputs, surveys, priorities,
        predictor_of(settings, rules))
    return Core(rules, config, index, partials_index, bands, customer_alerts, shares,
                surveys, priorities, writer)
