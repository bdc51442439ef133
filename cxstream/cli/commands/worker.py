"""cxstream worker: run one worker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cxstream.cli.options import (
    BootstrapOption,
    ConfigOption,
    fail,
    settings_or_exit,
)

# -- worker -------------------------------------------------------------------------------

def worker(
    web_port: Annotated[int | None, typer.Option(help="HTTP port (CXSTREAM_WEB_PORT)")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (CXSTREAM_DATA_DIR)")] = None,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
) -> None:
    """Run a stream worker: ingest, state, scores, alerts; /metrics on its web port."""
    overrides = {k: v for k, v in {"web_port": web_port, "data_dir": data_dir}.items() if v}
    settings = settings_or_exit(bootstrap_servers, config, **overrides)
    from cxstream.streams.worker import WorkerStartError, run_worker

    try:
        run_worker(settings)
    except WorkerStartError as exc:
        raise fail(str(exc)) from exc
