"""The one client of a worker's HTTP API: the command line calls it (``call``), and a
worker forwards a request to the worker that owns the key with it (``acall``).

An answer other than 200 raises ApiError with the worker's own message (its JSON
``error``), status and Retry-After. ``busy_seconds``: how long ``call`` keeps asking a
worker that answers 503 with Retry-After (restoring its tables, taking over partitions,
stopping), waiting what it asks each time (at most 10 s).
"""

from __future__ import annotations

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


def _busy(response: httpx.Response) -> bool:
    return response.status_code == 503 and "Retry-After" in response.headers


def _asked_wait(state: tenacity.RetryCallState) -> float:
    outcome = state.outcome
    header = outcome.result().headers.get("Retry-After", "1") if outcome else "1"
    try:
        return min(max(float(header), 0.1), 10.0)
    except ValueError:
        return 1.0


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
            response = tenacity.Retrying(
                retry=tenacity.retry_if_result(_busy), wait=_asked_wait,
                stop=tenacity.stop_after_delay(self.busy_seconds),
                retry_error_callback=lambda state: state.outcome.result() if state.outcome
                else None, reraise=True)(once)
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
