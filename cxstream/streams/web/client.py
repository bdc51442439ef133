"""The one client of a worker's HTTP API: the command line calls it (``call``), and a
worker forwards a request to the worker that owns the key with it (``acall``).

An answer other than 200 raises ApiError with the worker's own message (its JSON
``error``), status and Retry-After. ``busy_seconds``: how long ``call`` keeps asking a
worker that answers 503 with Retry-After (restoring its tables, taking over partitions,
stopping), waiting what it asks each time (at most 10 s).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import tenacity

from cxstream.streams.web.errors import ApiError


class Unreachable(ConnectionError):
    """No answer from the worker at all (refused, timed out, name not found)."""


def error_of(response: httpx.Response) -> ApiError:
    try:
        message = str(response.json().get("error", response.text))
    except ValueError:
        message = response.text[:200]
    return ApiError(response.status_code, message, response.headers.get("Retry-After"))


#: how long the command line waits on a worker that answers 503 with Retry-After
#: (restoring its tables, taking over partitions, stopping) before it says so
BUSY_WAIT_SECONDS = 60.0


def busy_retrying(request: Callable[[], Any], seconds: float | None = None) -> Any:
    """``request()`` again while its answer is a 503 with Retry-After, waiting what the
    worker asks (at most 10 s a time, ``seconds`` in all: BUSY_WAIT_SECONDS by default);
    the last answer."""
    def busy(response: Any) -> bool:
        return bool(response.status_code == 503 and "Retry-After" in response.headers)

    def asked(state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        header = outcome.result().headers.get("Retry-After", "1") if outcome else "1"
        try:
            return min(max(float(header), 0.1), 10.0)
        except ValueError:
            return 1.0

    return tenacity.Retrying(
        retry=tenacity.retry_if_result(busy), wait=asked,
        stop=tenacity.stop_after_delay(BUSY_WAIT_SECONDS if seconds is None else seconds),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome
        else None, reraise=True)(request)


class ApiClient:
    """Requests to one worker's API with the given headers (a bearer token, or a
    worker's credential with the acting user signed: web.credentials)."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float = 30.0,
                 busy_seconds: float = 0.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = headers
        self.timeout = timeout
        self.busy_seconds = busy_seconds

    def call(self, method: str, path: str, params: dict[str, str] | None = None,
             json: Any = None) -> Any:
        """The answer's JSON; raises ApiError or Unreachable."""
        def once() -> httpx.Response:
            return httpx.request(method, self.base_url + path, params=params,
                                 headers=self.headers, timeout=self.timeout, json=json)
        try:
            response = busy_retrying(once, self.busy_seconds)
        except httpx.HTTPError as exc:
            raise Unreachable(f"cannot reach a worker at {self.base_url}: {exc}") from exc
        return self._answer(response)

    async def acall(self, method: str, path: str, params: dict[str, str] | None = None,
                    json: Any = None) -> Any:
        """``call`` from a worker's event loop (no waiting on a busy worker: the caller is
        told to come back, with the owner's Retry-After)."""
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.request(method, self.base_url + path, params=params,
                                                 headers=self.headers, json=json)
        except httpx.HTTPError as exc:
            raise Unreachable(f"cannot reach the worker at {self.base_url}: {exc}") from exc
        return self._answer(response)

    @staticmethod
    def _answer(response: httpx.Response) -> Any:
        if response.status_code != 200:
            raise error_of(response)
        return response.json()
