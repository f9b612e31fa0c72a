"""Prometheus metrics of the daemon, read from its counters at scrape time.

Nothing is counted through prometheus-client on the hot path: the engine,
the event-time buffer, the outbox and the daemon keep plain counters, and
this collector turns them into metric families when ``/metrics`` is scraped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kairos._snapfiles import SnapshotFiles
from kairos._units import Unit
from kairos.adapters import wall_ms

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Outbox(Protocol):
    def statistics(self) -> Any: ...  # the outbox's ``OutboxStats``: pending, in flight, per-channel lanes


class _Reloads(Protocol):
    @property
    def reloads(self) -> int: ...

    @property
    def refused(self) -> int: ...


class _KafkaSource(Protocol):
    """The Kafka source's consumer (``kairos._kafka.KafkaPump``)."""

    @property
    def config(self) -> Any: ...  # its ``KafkaSourceConfig``: the topic

    @property
    def owned(self) -> set[int]: ...

    @property
    def waiting(self) -> Mapping[int, object]: ...  # assigned partitions whose state is not taken yet (paused)

    @property
    def assignments(self) -> int: ...

    @property
    def revocations(self) -> int: ...

    def lag(self) -> dict[int, int]: ...


class _KafkaFeedback(Protocol):
    """The ``[feedback.kafka]`` consumer (``kairos._kafka_feedback.KafkaFeedback``)."""

    @property
    def config(self) -> Any: ...

    @property
    def counts(self) -> Any: ...  # its ``FeedbackCounts``

    def lag(self) -> dict[int, int]: ...


class Observed(Protocol):
    """What the collector reads of the daemon at scrape time (``kairos._daemon.Daemon`` hands itself)."""

    @property
    def units(self) -> Mapping[str, Unit]: ...

    @property
    def events_by_type(self) -> Mapping[type, int]: ...

    @property
    def sends_by(self) -> Mapping[tuple[str, str], int]: ...  # (scenario, channel) → sends accepted

    @property
    def decode_errors(self) -> int: ...

    @property
    def duplicates(self) -> int: ...

    @property
    def event_errors(self) -> int: ...

    @property
    def late(self) -> int: ...

    @property
    def future(self) -> int: ...

    @property
    def not_owned(self) -> int: ...

    @property
    def duplicate_sends(self) -> int: ...

    @property
    def snapshot_failures(self) -> int: ...

    @property
    def tags_out_errors(self) -> int: ...

    @property
    def snapshot_error(self) -> str | None: ...

    @property
    def outbox(self) -> _Outbox: ...

    @property
    def files(self) -> SnapshotFiles: ...

    @property
    def reloader(self) -> _Reloads: ...

    @property
    def kafka_pump(self) -> _KafkaSource | None: ...

    @property
    def kafka_feedback(self) -> _KafkaFeedback | None: ...


class DaemonCollector(Collector):
    """Every metric the ops guide lists (docs/operations.md)."""

    def __init__(self, daemon: Observed) -> None:
        self.d = daemon

    def collect(self) -> Iterator[Metric]:
        d = self.d
        units = list(d.units.values())
        events = CounterMetricFamily("kairos_events", "Events decoded, by type", labels=["type"])
        for cls, n in sorted(d.events_by_type.items(), key=lambda kv: kv[0].__name__):
            events.add_metric([cls.__struct_config__.tag], n)
        yield events
        yield CounterMetricFamily("kairos_decode_errors", "Input lines that were not valid events (skipped, logged)",
                                  value=d.decode_errors)
        yield CounterMetricFamily("kairos_duplicate_events",
                                  "Events identical to one seen within the duplicate window (skipped)", value=d.duplicates)
        yield CounterMetricFamily("kairos_event_errors",
                                  "Events and deadlines whose processing raised an error (skipped, logged)",
                                  value=d.event_errors)
        yield CounterMetricFamily("kairos_late_events", "Events older than the stream's time (not processed, logged)",
                                  value=d.late)
        yield CounterMetricFamily("kairos_future_events",
                                  "Events dated more than time.max_ahead_ms ahead of the wall clock (refused, logged)",
                                  value=d.future)
        yield CounterMetricFamily("kairos_not_owned_events", "Ingested events of partitions this instance does not own",
                                  value=d.not_owned)
        stream = GaugeMetricFamily("kairos_stream_time_seconds", "A unit's event time", labels=["unit"])
        lag = GaugeMetricFamily("kairos_lag_seconds", "Wall clock minus a unit's event time", labels=["unit"])
        buffered = GaugeMetricFamily("kairos_buffered_events", "Events waiting in a unit's lateness buffer", labels=["unit"])
        now = wall_ms()
        for u in units:
            t = u.engine.now
            stream.add_metric([u.name], max(t, 0) / 1000)
            lag.add_metric([u.name], (now - t) / 1000 if t > 0 else 0.0)
            buffered.add_metric([u.name], len(u.clock._heap))
        yield from (stream, lag, buffered)
        yield GaugeMetricFamily("kairos_units", "Units of state owned (partitions; 1 unpartitioned)", value=len(units))

        states = GaugeMetricFamily("kairos_subscribers_in_state", "Subscribers a scenario holds state for",
                                   labels=["scenario"])
        matched = CounterMetricFamily("kairos_matched", "Pattern completions", labels=["scenario"])
        triggers = CounterMetricFamily("kairos_triggers", "Completions that passed every gate", labels=["scenario"])
        suppressed = CounterMetricFamily("kairos_suppressed", "Completions stopped by a gate", labels=["scenario", "reason"])
        writes = CounterMetricFamily("kairos_tag_writes", "Triggers whose `set` clause wrote tags",
                                     labels=["scenario"])
        per: dict[str, list[int]] = {}
        why: dict[tuple[str, str], int] = {}
        writers = {scn.name for u in units for scn in u.engine.scenarios if scn.sets}
        for u in units:
            e = u.engine
            for scn, rt, st in zip(e.scenarios, e.runtimes, e.stats):
                acc = per.setdefault(scn.name, [0, 0, 0, 0])
                acc[0] += len(rt.states)
                acc[1] += st.matched
                acc[2] += st.triggered
                acc[3] += st.tag_writes
                for reason, n in st.suppressed.items():
                    why[(scn.name, reason)] = why.get((scn.name, reason), 0) + n
        for name, (n_states, n_matched, n_triggered, n_writes) in per.items():
            states.add_metric([name], n_states)
            matched.add_metric([name], n_matched)
            triggers.add_metric([name], n_triggered)
            if n_writes or name in writers:
                writes.add_metric([name], n_writes)
        for (name, reason), n in sorted(why.items()):
            suppressed.add_metric([name, reason], n)
        yield from (states, matched, triggers, suppressed, writes)
        yield from _schedules(units)

        sends = CounterMetricFamily("kairos_sends", "Sends accepted by the outbox", labels=["scenario", "channel"])
        for (scenario, channel), n in sorted(d.sends_by.items()):
            sends.add_metric([scenario, channel], n)
        yield sends
        yield CounterMetricFamily("kairos_repeated_decisions",
                                  "Sends decided again after a restart and dropped by the outbox", value=d.duplicate_sends)

        ob = d.outbox.statistics()
        yield GaugeMetricFamily("kairos_outbox_pending", "Sends accepted, not yet delivered or dead-lettered", value=ob.pending)
        yield GaugeMetricFamily("kairos_outbox_in_flight", "Sends being attempted", value=ob.in_flight)
        yield GaugeMetricFamily("kairos_outbox_spilled", "Pending sends waiting on disk", value=ob.spilled)
        yield CounterMetricFamily("kairos_outbox_expired", "Sends refused: trigger time below the outbox floor, "
                                  "so whether they were sent is no longer known", value=ob.expired)
        delivered = CounterMetricFamily("kairos_outbox_delivered", "Sends delivered", labels=["channel"])
        retried = CounterMetricFamily("kairos_outbox_retried", "Attempts that will be retried", labels=["channel"])
        dead = CounterMetricFamily("kairos_outbox_dead_lettered", "Sends given up", labels=["channel"])
        queued = GaugeMetricFamily("kairos_outbox_queued", "Sends waiting in memory", labels=["channel"])
        for name, lane in sorted(ob.channels.items()):
            delivered.add_metric([name], lane.delivered)
            retried.add_metric([name], lane.retried)
            dead.add_metric([name], lane.dead_lettered)
            queued.add_metric([name], lane.queued)
        yield from (delivered, retried, dead, queued)

        snap = d.files.last
        yield CounterMetricFamily("kairos_snapshots", "Snapshots published", value=d.files.taken)
        yield CounterMetricFamily("kairos_snapshot_failures", "Snapshots that failed (the previous one stayed)",
                                  value=d.snapshot_failures)
        yield CounterMetricFamily("kairos_tags_out_errors",
                                  "Tag writes or flushes the tags_out file refused (logged; the tags are kept)",
                                  value=d.tags_out_errors)
        yield GaugeMetricFamily("kairos_snapshot_failing", "1 while the last snapshot failed, else 0",
                                value=int(d.snapshot_error is not None))
        if snap is not None:
            yield GaugeMetricFamily("kairos_snapshot_duration_seconds", "The last snapshot, from capture to published",
                                    value=snap.duration_ms / 1000)
            yield GaugeMetricFamily("kairos_snapshot_pause_seconds", "How long the last snapshot paused processing",
                                    value=snap.pause_ms / 1000)
            yield GaugeMetricFamily("kairos_snapshot_bytes", "The last snapshot's size", value=snap.bytes)
        yield CounterMetricFamily("kairos_reloads", "Scenario reloads applied", value=d.reloader.reloads)
        yield CounterMetricFamily("kairos_reloads_refused", "Scenario reloads refused", value=d.reloader.refused)
        yield from _kafka(d.kafka_pump, d.kafka_feedback)


def _kafka(pump: _KafkaSource | None, feedback: _KafkaFeedback | None) -> Iterator[Metric]:
    """The Kafka source's partitions, lag and rebalances, and the Kafka feedback consumer's records and lag."""
    if pump is not None:
        topic = pump.config.topic
        lag = GaugeMetricFamily("kairos_kafka_lag_records", "Records of an owned partition not fed yet: the "
                                "broker's high-water mark minus the offset after the last record fed",
                                labels=["topic", "partition"])
        for p, n in sorted(pump.lag().items()):
            lag.add_metric([topic, str(p)], n)
        yield lag
        yield GaugeMetricFamily("kairos_kafka_partitions_owned", "Partitions of the topic assigned to this instance",
                                value=len(pump.owned))
        yield GaugeMetricFamily("kairos_kafka_partitions_waiting", "Partitions assigned to this instance whose "
                                "state is not taken yet (outbox store locked by another owner, or snapshot "
                                "unreadable): paused, their records wait on the topic, retried",
                                value=len(pump.waiting))
        rebalances = CounterMetricFamily("kairos_kafka_rebalances", "Partition assignments and revocations "
                                         "received from the consumer group", labels=["change"])
        rebalances.add_metric(["assigned"], pump.assignments)
        rebalances.add_metric(["revoked"], pump.revocations)
        yield rebalances
    if feedback is not None:
        topic = feedback.config.topic
        c = feedback.counts
        records = CounterMetricFamily("kairos_feedback_kafka_records", "Callbacks read from the feedback topic: "
                                      "accepted, malformed records (skipped, logged), or for subscribers another "
                                      "instance owns", labels=["result"])
        for result, n in (("accepted", c.accepted), ("malformed", c.malformed), ("not_owned", c.not_owned)):
            records.add_metric([result], n)
        yield records
        flag = GaugeMetricFamily("kairos_feedback_kafka_lag_records", "Records of a feedback partition not read "
                                 "yet (high-water mark minus the next offset)", labels=["topic", "partition"])
        for p, n in sorted(feedback.lag().items()):
            flag.add_metric([topic, str(p)], n)
        yield flag


def registry_for(daemon: Observed) -> CollectorRegistry:
    """A registry whose one collector reads ``daemon``'s counters at each scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(daemon))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The Prometheus text format."""
    return generate_latest(registry)


def _schedules(units: list[Unit]) -> Iterator[Metric]:
    """Schedule instants fired, subscribers they visited, and the subscribers a sweep under way has left."""
    instants = CounterMetricFamily("kairos_schedule_instants", "Schedule instants fired", labels=["scenario"])
    visited = CounterMetricFamily("kairos_schedule_visited", "Subscribers visited at schedule instants",
                                  labels=["scenario"])
    left = GaugeMetricFamily("kairos_schedule_sweep_left", "Subscribers a schedule instant's sweep has yet to visit",
                             labels=["scenario"])
    per: dict[str, list[int]] = {}
    for u in units:
        for rt in u.engine.schedules:
            acc = per.setdefault(u.engine.scenarios[rt.index].name, [0, 0, 0])
            acc[0] += rt.instants
            acc[1] += rt.visited
            acc[2] += 0 if rt.sweep is None else len(rt.sweep.members) - rt.sweep.done
    for name, (n_instants, n_visited, n_left) in sorted(per.items()):
        instants.add_metric([name], n_instants)
        visited.add_metric([name], n_visited)
        left.add_metric([name], n_left)
    yield from (instants, visited, left)
