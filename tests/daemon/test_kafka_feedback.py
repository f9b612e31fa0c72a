"""The Kafka feedback consumer's positions, against the suite's broker: each unit gets every callback of its
subscribers after its own position, once, whichever units arrive when, and a position read on one topic is
never taken for another's.

The daemon is stood in for by ``Owner`` (units by name, the unit of a subscriber, the callbacks fed); the
consumer is the real one. Every wait is for progress the consumer makes (the units it follows, the offsets
it records), never a chosen time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from kairos._config import KafkaFeedbackConfig
from kairos._kafka_feedback import KafkaFeedback
from kairos.adapters import Feedback, FilePosition
from tests.conftest import unique_topic
from tests.kafka_records import create_topic, produce

pytestmark = pytest.mark.anyio


class Owner:
    """The daemon as the consumer sees it: subscribers with an even last digit are u0's, odd ones u1's."""

    def __init__(self) -> None:
        self.units: dict[str, Any] = {}
        self.fed: dict[str, list[int]] = {"u0": [], "u1": []}

    def unit_of(self, msisdn: str) -> str:
        return "u0" if int(msisdn[-1]) % 2 == 0 else "u1"

    def taking(self, unit: str) -> bool:
        return False

    def feed(self, fb: Feedback, unit: str) -> None:
        self.fed[unit].append(int(fb.trigger_id.rsplit(":", 1)[1]) - 1_000)  # the record's number


def unit(name: str, positions: dict[str, FilePosition] | None = None) -> Any:
    """What the consumer reads and writes of a ``Unit``: its name and its positions."""
    return SimpleNamespace(name=name, positions=dict(positions or {}))


def callback(i: int) -> tuple[None, bytes]:
    """Record ``i``: a click of subscriber …i (u0's when i is even), numbered by its trigger id."""
    return None, json.dumps({"trigger_id": f"s:13800000{i:03d}:{1_000 + i}", "outcome": "clicked"}).encode()


def read_up_to(u: Any, end: int) -> bool:
    """The unit's position in the feedback topic (whatever its key) has reached ``end``."""
    return any(p.offset >= end for p in u.positions.values())


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(30):
        while not condition():
            await anyio.sleep(0.02)


@pytest.mark.parametrize("key", ["feedback.kafka:{topic}:0", "feedback.kafka:0"], ids=["key", "older-key"])
async def test_a_unit_arriving_with_a_position_does_not_make_one_reading_from_the_start_skip_records(
        kafka: str, key: str) -> None:
    """u0 has no position: the consumer reads the partition from its start for it. Before it has read a
    record, u1 arrives having applied the first four: u0 still gets all of its callbacks, u1 those after."""
    topic = unique_topic()
    await create_topic(kafka, topic, 1)
    owner = Owner()
    consumer = KafkaFeedback(owner, KafkaFeedbackConfig(kafka, topic), channel="sms")
    u0 = owner.units["u0"] = unit("u0")
    async with anyio.create_task_group() as tg:
        tg.start_soon(consumer.run)
        await until(lambda: consumer._seen.get("u0") is u0)  # followed: from the partition's start
        u1 = owner.units["u1"] = unit("u1", {key.format(topic=topic): FilePosition(topic, 0, 0, 4)})
        await until(lambda: consumer._seen.get("u1") is u1)
        await produce(kafka, topic, [callback(i) for i in range(8)], partition=0)
        await until(lambda: read_up_to(u0, 8) and read_up_to(u1, 8))
        tg.cancel_scope.cancel()
    assert ([0, 2, 4, 6], [5, 7]) == (owner.fed["u0"], owner.fed["u1"])


@pytest.mark.parametrize("key", ["feedback.kafka:{topic}:0", "feedback.kafka:0"], ids=["key", "older-key"])
async def test_a_position_in_the_previous_feedback_topic_is_not_taken_for_the_new_topics(
        kafka: str, key: str) -> None:
    """``[feedback.kafka] topic`` changed: the unit's snapshot holds offset 5 of the old topic. The new
    topic is read from its start for it — its first records are not skipped for the old topic's sake."""
    old, topic = unique_topic(), unique_topic()
    await create_topic(kafka, topic, 1)
    owner = Owner()
    consumer = KafkaFeedback(owner, KafkaFeedbackConfig(kafka, topic), channel="sms")
    u0 = owner.units["u0"] = unit("u0", {key.format(topic=old): FilePosition(old, 0, 0, 5)})
    await produce(kafka, topic, [callback(i) for i in (0, 2, 4, 6)], partition=0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(consumer.run)
        await until(lambda: u0.positions.get(f"feedback.kafka:{topic}:0") is not None
                    and u0.positions[f"feedback.kafka:{topic}:0"].offset == 4)
        tg.cancel_scope.cancel()
    assert [0, 2, 4, 6] == owner.fed["u0"]
    assert FilePosition(old, 0, 0, 5) == u0.positions[key.format(topic=old)]  # the old topic's, kept as it was


async def test_a_position_of_an_older_snapshot_naming_this_topic_is_resumed_from_and_rewritten_with_the_topic(
        kafka: str) -> None:
    """Snapshots written before the key held the topic: their position names its topic, so it is this one's —
    the unit resumes after it, and from then on its position is kept under the key with the topic."""
    topic = unique_topic()
    await create_topic(kafka, topic, 1)
    owner = Owner()
    consumer = KafkaFeedback(owner, KafkaFeedbackConfig(kafka, topic), channel="sms")
    u0 = owner.units["u0"] = unit("u0", {"feedback.kafka:0": FilePosition(topic, 0, 0, 2)})
    await produce(kafka, topic, [callback(i) for i in (0, 2, 4, 6)], partition=0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(consumer.run)
        await until(lambda: read_up_to(u0, 4))
        tg.cancel_scope.cancel()
    assert [4, 6] == owner.fed["u0"]  # records 0 and 1 (callbacks 0 and 2) were in its state already
    assert {f"feedback.kafka:{topic}:0": FilePosition(topic, 0, 0, 4)} == u0.positions
