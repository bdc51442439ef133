"""The worker's app as built (no broker is contacted): what a rebalance resets."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxstream.streams.kafka.faust_compat import fixes
from cxstream.streams.settings import load_settings
from cxstream.streams.topology import build_app


def test_no_app_is_built_without_the_faust_fixes(tmp_path: Path) -> None:
    settings = load_settings({}, data_dir=str(tmp_path / "worker"), partitions="3",
                             replication_factor="1")
    assert not fixes.is_applied()  # no test leaves them applied
    with pytest.raises(RuntimeError, match="faust_compat"):
        build_app(settings, partition_count=3, alerts_partition_count=3)


async def test_an_assignment_makes_dead_letters_be_read_back_again(tmp_path: Path) -> None:
    settings = load_settings({}, data_dir=str(tmp_path / "worker"), partitions="3",
                             replication_factor="1")
    with fixes.applied():
        worker = build_app(settings, partition_count=3, alerts_partition_count=3,
                           deadletter_partition_count=3)
    app, deadletters = worker.app, worker.services.deadletters
    deadletters.verified.update({("cx.feedback", 0), ("cx.feedback", 1)})
    await app.on_partitions_assigned.send(set())
    assert deadletters.verified == set()


def test_the_openapi_document_describes_every_api_route_and_no_other(tmp_path: Path) -> None:
    from cxstream.streams.web.openapi import openapi_document

    settings = load_settings({}, data_dir=str(tmp_path / "worker"), partitions="3",
                             replication_factor="1")
    with fixes.applied():
        app = build_app(settings, partition_count=3, alerts_partition_count=3,
                        deadletter_partition_count=3).app
    document = openapi_document(["hour", "day", "7d"])
    served = {path for path in app.web.views if path.startswith("/api/")}
    assert set(document["paths"]) == served
    for path, operations in document["paths"].items():
        view = app.web.views[path]
        for method in ("get", "post"):  # the methods a view answers are the documented ones
            handler = getattr(view, method, None)
            answers = handler is not None and getattr(handler, "__qualname__", "").split(
                ".")[0] != "View"
            assert answers == (method in operations), (path, method)


async def test_a_request_made_while_the_worker_stops_or_restores_is_told_to_come_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the stop begins the tables close: an alert action then wrote to a closed
    RocksDB store (a 500, and a stop held by the request). It is now a 503 with
    Retry-After, before anything is read or written. Likewise a change while the tables
    are restored: its changelog offset would make the next start skip what was not
    restored yet."""
    import httpx

    from cxstream.cli.processes import free_port
    from cxstream.streams.web import errors as api_module

    token = "t" * 32
    settings = load_settings({}, data_dir=str(tmp_path / "worker"), partitions="3",
                             replication_factor="1", api_token=token,
                             web_port=str(free_port()))
    with fixes.applied():
        app = build_app(settings, partition_count=3, alerts_partition_count=3,
                        deadletter_partition_count=3).app
        await app.web.start_server()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.web_port}",
                                         headers={"Authorization": f"Bearer {token}"}) as api:
                monkeypatch.setattr(type(app), "should_stop", property(lambda self: True))
                for method, path in (("POST", "/api/alerts/a-1/ack"),
                                     ("GET", "/api/alerts"), ("GET", "/api/customers/c-1")):
                    answer = await api.request(method, path, json={} if method == "POST"
                                               else None)
                    assert answer.status_code == 503, (path, answer.text)
                    assert "stopping" in answer.json()["error"]
                    assert answer.headers["Retry-After"] == "5"
                monkeypatch.undo()
                # not stopping, but its tables not restored (never started here): changes
                # wait, reads do not; this worker owns every key (no producer runs here)
                monkeypatch.setattr(app.router, "key_store",
                                    lambda table, key: app.conf.canonical_url)
                for path in ("/api/alerts/a-1/ack", "/api/customers/c-1/erase"):
                    answer = await api.post(path, json={})
                    assert answer.status_code == 503, (path, answer.text)
                    assert "restoring" in answer.json()["error"]
                    assert answer.headers["Retry-After"] == "2"
                monkeypatch.setattr(api_module, "is_serving", lambda app: True)
                answer = await api.post("/api/alerts/a-1/ack", json={})
                assert answer.status_code == 404, answer.text  # served: no such alert
                without_token = await api.get("/api/alerts", headers={"Authorization": ""})
                assert without_token.status_code == 401  # the door is checked first
        finally:
            await app.web.stop_server()


async def test_a_forwarded_request_keeps_the_owners_retry_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A change forwarded to the partition's owner, which answers 503 while it restores:
    the caller gets the owner's Retry-After (it was dropped, so clients gave up at once)."""
    import httpx
    from aiohttp import web as aioweb

    from cxstream.cli.processes import free_port
    from testkit.support import local_server

    async def restoring(request: aioweb.Request) -> aioweb.Response:
        return aioweb.json_response({"error": "restoring"}, status=503,
                                    headers={"Retry-After": "7"})

    runner, owner_port = await local_server("POST", "/api/alerts/{alert_id}/{action}",
                                            restoring)
    token = "t" * 32
    settings = load_settings({}, data_dir=str(tmp_path / "worker"), partitions="3",
                             replication_factor="1", api_token=token,
                             web_port=str(free_port()))
    try:
        with fixes.applied():
            app = build_app(settings, partition_count=3, alerts_partition_count=3,
                            deadletter_partition_count=3).app
            monkeypatch.setattr(app.router, "key_store",
                                lambda table, key: f"http://127.0.0.1:{owner_port}")
            await app.web.start_server()
            try:
                async with httpx.AsyncClient(
                        base_url=f"http://127.0.0.1:{settings.web_port}",
                        headers={"Authorization": f"Bearer {token}"}) as api:
                    answer = await api.post("/api/alerts/a-1/ack", json={})
            finally:
                await app.web.stop_server()
    finally:
        await runner.cleanup()
    assert answer.status_code == 503 and answer.json() == {"error": "restoring"}
    assert answer.headers["Retry-After"] == "7"


@pytest.mark.parametrize("instance", [None, "worker-0"])
def test_the_worker_joins_its_groups_with_its_group_instance_id(
        tmp_path: Path, instance: str | None) -> None:
    values = {"data_dir": str(tmp_path / "worker"), "partitions": "3",
              "replication_factor": "1"}
    if instance is not None:
        values["group_instance_id"] = instance
    settings = load_settings({}, **values)
    with fixes.applied():
        app = build_app(settings, partition_count=3, alerts_partition_count=3,
                        deadletter_partition_count=3).app
    # Faust passes it to aiokafka as group_instance_id (the restart test shows it works)
    assert app.conf.consumer_group_instance_id == instance


def test_any_session_timeout_the_settings_allow_is_one_faust_accepts(tmp_path: Path) -> None:
    """Faust's consumer refuses a session longer than its request timeout (90 s by
    default): a worker with CXSTREAM_SESSION_TIMEOUT_SECONDS=120 crashed as it started."""
    for seconds in ("6", "120", "300"):
        settings = load_settings({}, data_dir=str(tmp_path / "worker"), partitions="3",
                                 replication_factor="1", session_timeout_seconds=seconds)
        with fixes.applied():
            app = build_app(settings, partition_count=3, alerts_partition_count=3,
                            deadletter_partition_count=3).app
        assert app.conf.broker_session_timeout == float(seconds)
        assert app.conf.broker_request_timeout > app.conf.broker_session_timeout


def test_a_built_worker_exposes_the_counters_its_alert_rules_read_at_zero(
        tmp_path: Path) -> None:
    from prometheus_client import generate_latest

    settings = load_settings({}, data_dir=str(tmp_path / "worker"), partitions="3",
                             replication_factor="1")
    with fixes.applied():
        worker = build_app(settings, partition_count=3, alerts_partition_count=3,
                           deadletter_partition_count=3)
    scrape = generate_latest(worker.services.metrics.registry).decode()
    assert 'cxstream_partition_stalls_total{action="gave_up"} 0.0' in scrape
    assert 'cxstream_events_consumed_total{topic="cx.customers"} 0.0' in scrape
    assert 'cxstream_webhook_deliveries_total{outcome="retried"} 0.0' in scrape
