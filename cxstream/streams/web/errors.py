"""What can go wrong with a request, as exceptions the views turn into HTTP statuses:
400 BadRequest, 403 Forbidden, 404 NotFound, 409 Conflict, 503 NotServing or Unavailable
(with Retry-After), and ApiError for an answer relayed from another worker."""

from __future__ import annotations

from typing import Any

from cxstream.alerts.lifecycle import InvalidCommand, TransitionRefused
from cxstream.streams.alerting.case_index import IndexNotReady
from cxstream.streams.alerting.cases import CaseNotFound
from cxstream.streams.groups.cluster import ClusterIncomplete
from cxstream.streams.kafka.timers import is_serving


class BadRequest(ValueError):
    """A query parameter is invalid; the message says which and why."""


class NotFound(LookupError):
    """The requested customer or group does not exist."""


class Forbidden(PermissionError):
    """The caller may not do this (HTTP 403); the message says who may."""


class NotServing(RuntimeError):
    """A change asked of a worker that does not serve its partitions yet (a 503)."""


def must_serve(app: Any) -> None:
    """Before a change to a table: the worker serves its partitions. A change made on a
    half-restored table reads stale state, and its changelog offset would tell the next
    start to skip what was not restored yet."""
    if not is_serving(app):
        raise NotServing("this worker is restoring its tables or taking over partitions; "
                         "try again")


class Conflict(ValueError):
    """The alert's status does not allow the change (HTTP 409)."""



class Unavailable(RuntimeError):
    """No worker can answer right now (a rebalance is under way): a 503, to retry."""


class ApiError(RuntimeError):
    """A worker's API answered with an error: its status, message and Retry-After."""

    def __init__(self, status: int, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def status_of(exc: Exception) -> int | None:
    """The HTTP status of an error a call may raise (None: not one of them, a bug)."""
    if isinstance(exc, ApiError):
        return exc.status
    for kinds, status in (
            ((BadRequest, InvalidCommand), 400),
            ((Forbidden,), 403),
            ((NotFound, CaseNotFound), 404),
            ((Conflict, TransitionRefused), 409),
            ((ClusterIncomplete, IndexNotReady, NotServing, Unavailable), 503)):
        if isinstance(exc, kinds):
            return status
    return None
