"""The console's pages put together: each path and its view class, bound to one
worker's console when registered."""

from __future__ import annotations

from typing import Any, cast

import faust

from cxstream.streams.services import WorkerServices
from cxstream.streams.web.console.inbox import Inbox, InboxBulk, InboxEvents
from cxstream.streams.web.console.pages import (
    AlertAction,
    AlertPage,
    Console,
    ConsoleView,
    GroupPage,
    Login,
    Logout,
    PrioritiesPage,
    ScoresPage,
    StaticFile,
)
from cxstream.streams.web.worker_api import WorkerApi

PAGES: tuple[tuple[str, type[ConsoleView]], ...] = (
    ("/console/static/{name}", StaticFile),
    ("/console/login", Login),
    ("/console/logout", Logout),
    ("/console", Inbox),
    ("/console/events", InboxEvents),
    ("/console/inbox/bulk", InboxBulk),
    ("/console/alerts/{alert_id}", AlertPage),
    ("/console/alerts/{alert_id}/{action}", AlertAction),
    ("/console/scores", ScoresPage),
    ("/console/group", GroupPage),
    ("/console/priorities", PrioritiesPage),
)


def register_console(app: faust.App, services: WorkerServices, api: WorkerApi) -> Console:
    """Add the console's pages to the app, bound to this worker's console."""
    console = Console(services, api)
    blueprint = faust.web.Blueprint("console")
    for path, view in PAGES:
        blueprint.route(path, name=view.__name__)(
            type(view.__name__, (view,), {"console": console, "__doc__": view.__doc__}))
    blueprint.register(app)
    # cast: mode types the handler as a union of callables, which mypy cannot match
    app.on_before_shutdown.connect(cast(Any, console.stop_live_streams))
    return console
