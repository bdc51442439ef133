"""The webhook sink without a broker: one lane per destination (a receiver that is down
delays no other), commits up to the lowest alert not yet settled (digests included), a
digest refused for good dead-lettered, full queues dead-lettered, one webhook id per
notice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from cxstream.alerts.config import Notifications, load_rules
from cxstream.alerts.lifecycle import as_notice, open_case, resolve, take_alert
from cxstream.alerts.receivers import PermanentDeliveryError, TransientDeliveryError, delivery_id
from cxstream.schemas.outputs import Alert
from cxstream.streams.alerting.webhooks import OffsetTracker, WebhookSink
from cxstream.streams.metrics import WorkerMetrics
from cxstream.streams.settings import load_settings

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CONFIG = load_rules()
TP = TopicPartition("cx.alerts", 0)


class Sender:
    """A destination: answers each post as ``answer`` says (None: 2xx)."""

    def __init__(self, url: str, answer: Exception | None = None,
                 seconds: float = 0.0) -> None:
        self.url = url
        self.body_format = "json"
        self.answer = answer
        self.seconds = seconds
        self.posted: list[tuple[str, float]] = []

    async def post(self, webhook_id: str, body: bytes) -> None:
        await asyncio.sleep(self.seconds)
        if self.answer is not None:
            raise self.answer
        self.posted.append((webhook_id, asyncio.get_running_loop().time()))


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, dict[str, bytes]]] = []
        #: the settled topic's records: topic, partition, offset, webhook id
        self.marks: list[tuple[str, int, bytes, bytes | None]] = []
        #: acknowledgements held back (None: each mark acknowledged at once)
        self.held: list[asyncio.Future[None]] | None = None

    async def send(self, topic: str, value: bytes, partition: int,
                   key: bytes | None = None) -> asyncio.Future[None]:
        """Queued: the future is Kafka's acknowledgement (at once unless held)."""
        self.marks.append((topic, partition, value, key))
        acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.held is None:
            acked.set_result(None)
        else:
            self.held.append(acked)
        return acked

    async def send_and_wait(self, topic: str, key: bytes, value: bytes,
                            headers: list[tuple[str, bytes]]) -> None:
        self.sent.append((topic, value, dict(headers)))


def alert(n: int, team: str = "smb-support", **overrides: Any) -> Alert:
    data: dict[str, Any] = {
        "alert_id": f"a-{n}", "rule": "detractor", "severity": "warning",
        "customer_id": f"c-{n}", "owner": "am.a", "team": team,
        "summary": f"NPS 3 from c-{n}", "reason": {}, "context": {},
        "event_time": T0, "created_at": T0, "act_by": T0 + timedelta(hours=24)}
    data.update(overrides)
    return Alert.model_validate(data)


def record(offset: int, item: Alert | bytes, partition: int = 0) -> Any:
    value = item if isinstance(item, bytes) else item.model_dump_json().encode()
    return SimpleNamespace(topic="cx.alerts", partition=partition, offset=offset,
                           key=b"k", value=value)


def sink(senders: dict[str, Sender], clock: list[float], budget: int = 1_000,
         queue_max: int = 100) -> tuple[WebhookSink, Producer]:
    config = CONFIG.model_copy(update={"notifications": Notifications(
        destinations={team: sender.url for team, sender in senders.items()},  # type: ignore[misc]
        budget_per_hour=budget, digest_every_minutes=10)})
    settings_ = load_settings({}, webhook_queue_max=str(queue_max),
                              webhook_max_backoff_seconds="0.05")
    hook = WebhookSink(settings_, None, WorkerMetrics(CollectorRegistry()),
                       clock=lambda: clock[0], config=config,
                       senders={sender.url: sender for sender in senders.values()})  # type: ignore[misc]
    producer = Producer()
    hook.producer = producer
    return hook, producer


async def settle_down(hook: WebhookSink, seconds: float = 0.3) -> None:
    await asyncio.sleep(seconds)


async def stop(hook: WebhookSink) -> None:
    for lane in hook.lanes.values():
        await lane.stop()


async def test_a_destination_that_is_down_delays_no_other() -> None:
    # team A's receiver asks to come back in an hour; B's critical alert, read just after
    # A's on the same partition, is posted at once
    down = Sender("http://a.test/hook", TransientDeliveryError("HTTP 503", 3_600.0))
    up = Sender("http://b.test/hook")
    hook, _ = sink({"team-a": down, "team-b": up}, [T0.timestamp()])
    began = asyncio.get_running_loop().time()
    await hook.take(record(0, alert(0, team="team-a")))
    await hook.take(record(1, alert(1, team="team-b", severity="critical")))
    await settle_down(hook)
    assert [webhook_id for webhook_id, _ in up.posted] == ["a-1"]
    assert up.posted[0][1] - began < 1.0
    assert hook.offsets.commit_point(TP) == 0  # A's alert is not settled: nothing past it
    await stop(hook)


async def test_alerts_settled_above_the_commit_are_not_posted_again_by_the_next_owner(
) -> None:
    # A is down: B's alerts after A's are posted, and their offsets written to the
    # settled topic, but the commit stays at A's. The next owner reads those offsets
    # back: it posts A's alert and none of B's again.
    down = Sender("http://a.test/hook", TransientDeliveryError("HTTP 503", 3_600.0))
    up = Sender("http://b.test/hook")
    hook, producer = sink({"team-a": down, "team-b": up}, [T0.timestamp()])
    records = [record(0, alert(0, team="team-a"))] + [
        record(n, alert(n, team="team-b")) for n in range(1, 4)]
    for each in records:
        await hook.take(each)
    await settle_down(hook)
    await stop(hook)
    assert hook.offsets.commit_point(TP) == 0 and len(up.posted) == 3
    marks = {int(value) for topic, partition, value, _ in producer.marks
             if topic == hook.settled_topic and partition == 0}
    assert marks == {1, 2, 3}
    assert {key for *_, key in producer.marks} == {b"a-1", b"a-2", b"a-3"}

    again = Sender("http://a.test/hook")
    up_again = Sender("http://b.test/hook")
    nxt, _ = sink({"team-a": again, "team-b": up_again}, [T0.timestamp()])
    nxt.settled_before[TP] = marks  # what learn_settled reads back from the topic
    for each in records:
        await nxt.take(each)
    await settle_down(nxt)
    await stop(nxt)
    assert [webhook_id for webhook_id, _ in again.posted] == ["a-0"]
    assert up_again.posted == []
    assert nxt.offsets.commit_point(TP) == 4


async def test_a_slow_destination_delays_no_other() -> None:
    slow, fast = Sender("http://slow.test/", seconds=2.0), Sender("http://fast.test/")
    hook, _ = sink({"team-a": slow, "team-b": fast}, [T0.timestamp()])
    for n in range(3):
        await hook.take(record(2 * n, alert(2 * n, team="team-a")))
        await hook.take(record(2 * n + 1, alert(2 * n + 1, team="team-b")))
    await settle_down(hook)
    assert [webhook_id for webhook_id, _ in fast.posted] == ["a-1", "a-3", "a-5"]
    await stop(hook)


async def test_a_digest_commits_nothing_past_an_alert_not_yet_handled() -> None:
    clock = [T0.timestamp()]
    team, other = Sender("http://smb.test/"), Sender("http://b.test/", seconds=5.0)
    hook, _ = sink({"smb-support": team, "team-b": other}, clock, budget=1)
    await hook.take(record(0, alert(0)))  # posted alone
    await hook.take(record(1, alert(1)))  # held for the digest
    await hook.take(record(2, alert(2, team="team-b")))  # on a slow lane, still posting
    await hook.take(record(3, alert(3)))  # held
    clock[0] += 600
    assert await hook.queue_digests() == 2
    await settle_down(hook)
    assert team.posted[0][0] == "a-0"
    assert team.posted[1][0].startswith("digest-")
    assert hook.offsets.commit_point(TP) == 2  # not past the alert still being posted
    await stop(hook)


async def test_a_digest_refused_for_good_goes_to_the_dead_letter_topic_with_the_reason(
        ) -> None:
    clock = [T0.timestamp()]
    refusing = Sender("http://smb.test/", PermanentDeliveryError("HTTP 410: gone"))
    hook, producer = sink({"smb-support": refusing}, clock, budget=0)
    for n in range(3):
        await hook.take(record(n, alert(n)))
    clock[0] += 600
    assert await hook.queue_digests() == 3
    await settle_down(hook)
    assert len(producer.sent) == 3  # each alert of the digest, replayable on its own
    for topic, _, headers in producer.sent:
        assert topic == "cx.alerts.deadletter"
        assert b"the digest of 3 alerts for smb-support: HTTP 410" in headers[
            "cx.error.reason"]
    assert hook.offsets.commit_point(TP) == 3  # settled: committed, not retried forever
    await stop(hook)


async def test_a_full_queue_dead_letters_with_the_reason_instead_of_growing() -> None:
    down = Sender("http://a.test/", TransientDeliveryError("HTTP 503", 3_600.0))
    hook, producer = sink({"team-a": down}, [T0.timestamp()], queue_max=2)
    for n in range(5):
        await hook.take(record(n, alert(n, team="team-a", severity="critical")))
        await settle_down(hook, 0.05)  # the first is taken by the lane: being posted
    # one being posted, two waiting, two dead-lettered
    assert len(producer.sent) == 2
    assert b"queue of http://a.test/*** is full" in producer.sent[0][2]["cx.error.reason"]
    assert len(hook.lanes) == 1 and len(next(iter(hook.lanes.values())).queue) == 2
    await stop(hook)


async def test_an_expired_delivery_is_dead_lettered_and_later_ones_flow() -> None:
    clock = [T0.timestamp() + 90_000]  # older than the retry max age (a day)
    flaky = Sender("http://a.test/", TransientDeliveryError("HTTP 500", None))
    hook, producer = sink({"team-a": flaky}, clock)
    await hook.take(record(0, alert(0, team="team-a")))
    await settle_down(hook)
    assert len(producer.sent) == 1 and b"not delivered within" in producer.sent[0][2][
        "cx.error.reason"]
    assert hook.offsets.commit_point(TP) == 1
    await stop(hook)


async def test_not_an_alert_is_dead_lettered_and_updates_and_repeats_settle_at_once() -> None:
    team = Sender("http://smb.test/")
    hook, producer = sink({"smb-support": team}, [T0.timestamp()])
    await hook.take(record(0, b"{not json"))
    await hook.take(record(1, alert(1)))
    await hook.take(record(2, alert(1, occurrences=2)))  # an update: not posted
    await settle_down(hook)
    await hook.take(record(3, alert(1)))  # the same raise again (a replay)
    await settle_down(hook)
    assert [webhook_id for webhook_id, _ in team.posted] == ["a-1"]
    assert len(producer.sent) == 1
    assert hook.offsets.commit_point(TP) == 4
    await stop(hook)


def test_a_reopened_alert_resolved_again_has_its_own_webhook_id() -> None:
    now = T0
    case = open_case(alert(1), "smb-support", now, CONFIG)
    case = resolve(case, "alice", "contacted", None, now + timedelta(minutes=5), CONFIG)
    first = as_notice(case)
    reopened = take_alert(case, alert(1, occurrences=2), "smb-support",
                          now + timedelta(minutes=10), CONFIG)
    assert reopened is not None
    again = as_notice(resolve(reopened, "alice", "contacted", None,
                              now + timedelta(minutes=15), CONFIG))
    ids = [delivery_id(alert(1)), delivery_id(first), delivery_id(again)]
    assert ids == ["a-1", "a-1.resolved", "a-1.resolved.2"]


# -- the commit point ---------------------------------------------------------------------

@given(st.lists(st.tuples(st.integers(0, 40), st.booleans()), max_size=60))
@settings(max_examples=300, deadline=None)
def test_the_commit_point_never_passes_an_offset_read_and_not_settled(
        steps: list[tuple[int, bool]]) -> None:
    tracker, read, settled = OffsetTracker(), set(), set()
    for offset, settle in steps:
        if offset not in read:
            tracker.read("p", offset)
            read.add(offset)
        elif settle:
            tracker.settle("p", offset)
            settled.add(offset)
        point = tracker.commit_point("p")
        waiting = read - settled
        assert point == (min(waiting) if waiting else max(read) + 1)
    moved = tracker.to_commit(["p"])
    if read:
        tracker.committed(moved)
        assert tracker.to_commit(["p"]) == {}  # nothing moved since


async def test_an_alert_read_again_while_it_waits_is_posted_once_and_settled_with_it() -> None:
    # a worker republishes its last alerts after a crash: the copy arrives while the
    # first is still being retried
    flaky = Sender("http://smb.test/", TransientDeliveryError("HTTP 503", 0.2))
    hook, _ = sink({"smb-support": flaky}, [T0.timestamp()])
    await hook.take(record(0, alert(1)))
    await hook.take(record(1, alert(1)))  # the same alert, republished
    await settle_down(hook, 0.1)
    assert hook.offsets.commit_point(TP) == 0
    flaky.answer = None  # the receiver is back
    await settle_down(hook, 0.5)
    assert [webhook_id for webhook_id, _ in flaky.posted] == ["a-1"]
    assert hook.offsets.commit_point(TP) == 2 and hook.waiting == {}
    await stop(hook)


async def test_a_stop_lets_the_post_on_the_wire_be_answered_and_settled() -> None:
    # a worker leaving its group: cut off, the post may have reached the receiver while
    # its record stays uncommitted, and the partition's next owner posts it a second time
    slow = Sender("http://smb.test/", seconds=0.5)
    hook, producer = sink({"smb-support": slow}, [T0.timestamp()])
    await hook.take(record(0, alert(0)))
    await hook.take(record(1, alert(1)))
    await settle_down(hook, 0.1)  # a-0 is on the wire, a-1 queued behind it
    (lane,) = hook.lanes.values()
    await lane.stop(grace_seconds=5.0)
    assert [webhook_id for webhook_id, _ in slow.posted] == ["a-0"]
    assert hook.offsets.commit_point(TP) == 1  # a-0 settled; a-1 left to the next owner
    assert [(int(value), key) for _, _, value, key in producer.marks] == [(0, b"a-0")]


async def test_a_stop_does_not_wait_for_a_retry() -> None:
    down = Sender("http://smb.test/", TransientDeliveryError("HTTP 503", 3_600.0))
    hook, producer = sink({"smb-support": down}, [T0.timestamp()])
    await hook.take(record(0, alert(0)))
    await settle_down(hook, 0.1)  # failed once, waiting an hour to retry
    (lane,) = hook.lanes.values()
    await asyncio.wait_for(lane.stop(grace_seconds=60.0), 2.0)
    assert lane.task is not None and lane.task.done()
    assert down.posted == [] and producer.marks == []
    assert hook.offsets.commit_point(TP) == 0  # its next owner posts it


class SettledTopic:
    """The settled topic as the sink's reader sees it: per partition its records, a
    (offset, timestamp) found per time, and fetches of at most ``per_fetch`` records."""

    def __init__(self, records: dict[int, list[tuple[bytes | None, bytes]]],
                 per_fetch: int = 2, stalled: bool = False) -> None:
        self.records = records
        self.per_fetch = per_fetch
        self.stalled = stalled
        self.positions: dict[TopicPartition, int] = {}
        self.fetched_together: list[int] = []  # partitions asked for, per fetch
        self.unsubscribed = False

    async def offsets_for_times(self, times: dict[TopicPartition, int]) -> dict[Any, Any]:
        return {tp: SimpleNamespace(offset=0) if self.records.get(tp.partition) else None
                for tp in times}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.records.get(tp.partition, [])) for tp in tps}

    def assign(self, tps: list[TopicPartition]) -> None:
        self.positions = dict.fromkeys(tps, 0)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    async def getmany(self, *tps: TopicPartition, timeout_ms: int,
                      max_records: int) -> dict[TopicPartition, list[Any]]:
        self.fetched_together.append(len(tps))
        if self.stalled:
            await asyncio.sleep(0.01)
            return {}
        out = {}
        for tp in tps:
            at = self.positions[tp]
            chunk = self.records[tp.partition][at:at + self.per_fetch]
            self.positions[tp] = at + len(chunk)
            out[tp] = [SimpleNamespace(key=key, value=value) for key, value in chunk]
        return out

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    def unsubscribe(self) -> None:
        self.unsubscribed = True


async def test_what_was_settled_is_learnt_for_every_partition_in_one_read() -> None:
    hook, _ = sink({"smb-support": Sender("http://smb.test/")}, [T0.timestamp()])
    topic = SettledTopic({
        0: [(b"a-1", b"3"), (b"a-2", b"7"), (None, b"8"), (b"a-4", b"9"), (b"a-5", b"12")],
        1: [(b"b-1", b"1")],
        2: []})
    settled, ids = await hook.learn_settled(topic, {0: 8, 1: 0, 2: 5})  # type: ignore[arg-type]
    assert settled == {0: {8, 9, 12}, 1: {1}, 2: set()}  # at or above each commit
    assert sorted(ids) == ["a-1", "a-2", "a-4", "a-5", "b-1"]
    assert topic.fetched_together[0] == 2 and topic.unsubscribed  # 0 and 1 together


async def test_learning_that_makes_no_progress_fails_instead_of_hanging() -> None:
    hook, _ = sink({"smb-support": Sender("http://smb.test/")}, [T0.timestamp()])
    topic = SettledTopic({0: [(b"a-1", b"3")]}, stalled=True)
    with pytest.raises(KafkaError, match="no record"):
        await hook.learn_settled(topic, {0: 0}, stall_seconds=0.1)  # type: ignore[arg-type]
    assert topic.unsubscribed


async def test_a_lane_posts_its_next_delivery_once_the_settled_marks_are_acknowledged(
) -> None:
    # a SIGKILL must leave at most the one post on the wire per destination unmarked: the
    # next owner repeats only that one
    up = Sender("http://smb.test/")
    hook, producer = sink({"smb-support": up}, [T0.timestamp()])
    producer.held = []
    for n in range(3):
        await hook.take(record(n, alert(n)))
    await settle_down(hook, 0.2)
    assert [webhook_id for webhook_id, _ in up.posted] == ["a-0"]  # its mark not acked
    producer.held.pop().set_result(None)
    await settle_down(hook, 0.2)
    assert [webhook_id for webhook_id, _ in up.posted] == ["a-0", "a-1"]
    await stop(hook)


class FailsOnce(Sender):
    """A destination answering 429 to its first post, then taking every post."""

    async def post(self, webhook_id: str, body: bytes) -> None:
        if not self.posted and self.answer is not None:
            answer, self.answer = self.answer, None
            raise answer
        self.posted.append((webhook_id, asyncio.get_running_loop().time()))


async def test_an_old_alerts_resolution_is_retried_not_expired() -> None:
    """An alert raised two days ago (past the retry max age of a day) and resolved now:
    its resolution is a new message, retried after a 429 like any other (it was
    dead-lettered as expired, its age counted from the alert's creation)."""
    now = T0 + timedelta(days=2)
    clock = [now.timestamp()]
    limited = FailsOnce("http://a.test/", TransientDeliveryError("HTTP 429", 0.01))
    hook, producer = sink({"team-a": limited}, clock)
    case = open_case(alert(0, team="team-a"), "team-a", T0, CONFIG)
    resolved = as_notice(resolve(case, "alice", "contacted", None, now, CONFIG))
    await hook.take(record(0, resolved))
    await settle_down(hook)
    assert producer.sent == [] and [w for w, _ in limited.posted] == [delivery_id(resolved)]
    assert limited.answer is None  # the first post was refused, the retry taken
    assert hook.offsets.commit_point(TP) == 1
    await stop(hook)
