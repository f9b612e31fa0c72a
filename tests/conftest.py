"""Fixtures the whole suite shares: a Kafka-protocol broker (Tansu), started once per session on a free port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from bench.broker import Broker, start_broker, stop_broker


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The suite's broker: started from the test dependencies on first use, stopped by its pid at the end."""
    broker = start_broker(tmp_path_factory.mktemp("kafka"))
    try:
        yield broker
    finally:
        stop_broker(broker)


@pytest.fixture
def kafka(kafka_broker: Broker) -> str:
    """The broker's bootstrap address (tests name their topics with ``unique_topic``)."""
    return kafka_broker.bootstrap


def unique_topic(prefix: str = "kairos-test") -> str:
    """A topic (and group) name no other test uses: the broker lives for the whole session."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
