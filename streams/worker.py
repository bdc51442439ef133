"""Start a worker process: check the environment, create topics, run the Faust app."""

from __future__ import annotations

import asyncio
import logging
import os

import faust
from aiokafka.errors import KafkaError

from alerts.config import RulesError, load_rules
from alerts.topics import LexiconError, load_tagger
from cxstream.kafka.clients import TopicLayoutError, ensure_topics
from cxstream.settings import Settings
from streams.app import FaustEnvironmentError, build_app, check_faust_environment

log = logging.getLogger(__name__)


class WorkerStartError(RuntimeError):
    """The worker cannot start; the message says why."""


def run_worker(settings: Settings) -> None:
    """Run one worker until SIGTERM or SIGINT (then it commits and stops cleanly)."""
    try:
        check_faust_environment(os.environ)
        load_rules(settings.rules_file)  # validate before touching Kafka
        load_tagger(settings.lexicons_dir)
        counts = asyncio.run(asyncio.wait_for(ensure_topics(settings), timeout=60))
    except (FaustEnvironmentError, TopicLayoutError, RulesError, LexiconError) as exc:
        raise WorkerStartError(str(exc)) from exc
    except (KafkaError, OSError, TimeoutError) as exc:
        raise WorkerStartError(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {exc!r}"
        ) from exc
    asyncio.set_event_loop(asyncio.new_event_loop())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per webhook call is noise
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        app = build_app(settings, partition_count=counts[settings.topic_feedback],
                        alerts_partition_count=counts[settings.topic_alerts])
    except (RulesError, LexiconError, ValueError) as exc:
        raise WorkerStartError(str(exc)) from exc
    faust.Worker(app, loglevel=settings.log_level, quiet=True).execute_from_commandline()
