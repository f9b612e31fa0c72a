"""The daemon's configuration (``kairos run --config kairos.toml``), validated before anything starts.

Every section is a msgspec Struct with ``forbid_unknown_fields``: a misspelt
key is an error that names it and its section. Relative paths are relative
to the configuration file's folder. ``kairos.example.toml`` is the commented
reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from kairos.engine import DEFAULT_TZ


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and says what to do."""


class StartError(Exception):
    """The daemon cannot start (or a reload cannot be applied) with what the configuration names: the
    scenarios, templates, reference data, channels or a unit's snapshot; the message says what to fix."""


class PartitionBusy(StartError):
    """A partition's outbox store is locked by another owner (one still releasing it, stuck, or one whose
    ``owned`` partitions overlap this instance's) past ``outbox.adopt_wait_s``."""


class TimeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Event time: lateness and what happens when the sources are idle."""

    allowed_lateness_ms: int = 0  #: events wait this long (in event time) to be put in ts order
    idle_advance: bool = True  #: when the sources are idle, time follows the wall clock
    idle_after_ms: int = 1_000  #: how long without events counts as idle
    #: an event dated more than this ahead of the wall clock is refused (counted, logged): one wild
    #: timestamp would otherwise move the stream's time ahead and make every later event late; 0: no check
    max_ahead_ms: Annotated[int, msgspec.Meta(ge=0)] = 300_000


class SnapshotConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """When and how state is snapshotted."""

    interval_s: float = 60.0  #: a periodic snapshot every so often; 0: only at shutdown
    fork: bool = True  #: serialise in a forked child so processing never pauses for it
    keep_previous: bool = True  #: keep the last good snapshot as ``snapshot.bin.prev``
    partitions_dir: str = ""  #: where partition snapshots live, shared by the instances; default STATE_DIR/partitions


class FileSourceConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="file", tag_field="kind"):
    """Tail a JSON-lines file (safe across rotation) or every ``*.jsonl`` file of a directory in name order."""

    path: str
    name: str = ""  #: the key of its position in the snapshot; default: the path
    poll_ms: int = 200
    pattern: str = "*.jsonl"


class StdinSourceConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="stdin", tag_field="kind"):
    """Standard input (cannot resume after a restart: use a file source where that matters)."""

    name: str = "stdin"


class PartitionedSourceConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="partitioned",
                              tag_field="kind"):
    """An embedded partitioned log: a folder of ``p-NNNN.jsonl`` files split by msisdn like Kafka's
    partitioner; this instance owns ``owned`` of them (each its own state, event time and offset)."""

    path: str
    partitions: int  #: how many partitions the log has
    owned: list[int] = []  #: the partitions this instance owns; empty: all
    poll_ms: int = 200

    @property
    def owned_partitions(self) -> list[int]:
        return sorted(self.owned) if self.owned else list(range(self.partitions))


class KafkaSourceConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="kafka", tag_field="kind"):
    """A Kafka topic keyed by msisdn, read in a consumer group: the partitions assigned to this instance
    are the subscribers whose state it owns; offsets are committed once a snapshot holds their state."""

    bootstrap_servers: str
    topic: str
    group_id: str
    partitions: int  #: the topic's partition count (checked against the broker at start)
    client_id: str = "kairos"
    max_records: int = 10_000  #: records fetched at most per poll


SourceConfig = FileSourceConfig | StdinSourceConfig | PartitionedSourceConfig | KafkaSourceConfig


class ReloadConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Publishing scenarios while running."""

    watch: bool = True  #: poll the scenarios folder and reload when it changes
    poll_ms: int = 1_000
    audit_log: str = ""  #: JSON lines of every publish/change/withdrawal; default STATE_DIR/audit.jsonl


class HttpConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The HTTP endpoints: /metrics, /health, /ready, /ingest, /admin/*."""

    listen: str = ""  #: HOST:PORT (port 0: any free one, logged); empty: no HTTP server
    admin_token: str = ""  #: bearer token for /admin/reload and /admin/snapshot; empty: admin endpoints off
    ingest_token: str = ""  #: bearer token for POST /ingest; empty: open on a loopback listen, off on any other

    @property
    def address(self) -> tuple[str, int]:
        return _address(self.listen)


class KafkaFeedbackConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Channel responses (DLRs, clicks) read from a Kafka topic, each record one callback (or a JSON list of
    them) as ``POST /feedback`` takes it. Every instance reads every partition of the topic and applies what
    concerns the subscribers it owns; how far each unit has read is kept in its snapshot (``kairos._kafka_feedback``)."""

    bootstrap_servers: str
    topic: str
    client_id: str = "kairos-feedback"
    max_records: int = 1_000  #: records fetched at most per poll


class FeedbackConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Channel callbacks in: they become ``feedback`` events (follow-up waves, measurement)."""

    listen: str = ""  #: HOST:PORT of ``POST /feedback`` (adapters.FeedbackServer); "" for none
    secret: str = ""  #: HMAC-SHA256 secret the callbacks are signed with (X-Kairos-Signature); "" for unsigned
    channel: str = ""  #: the channel of callbacks that do not name one
    files: list[str] = []  #: callback files to follow (.jsonl or .csv), each remembering its offset beside it
    kafka: KafkaFeedbackConfig | None = None  #: ``[feedback.kafka]``: a topic of callbacks


class DedupConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Duplicate input (an at-least-once feed): an event identical to one seen within the window is skipped."""

    enabled: bool = True
    window_ms: int = 60_000  #: event time an event's identity is remembered; at least time.allowed_lateness_ms


class LogConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The daemon's JSON log on standard error."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    pseudonymise: bool = True  #: subscribers' numbers (in fields, ids and raw lines) as keyed hashes
    pseudonym_key: str = ""  #: the hash key; KAIROS_PSEUDONYM_KEY wins; neither: a random key per process


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``kairos.toml``."""

    scenarios: str  #: a folder of ``*.kairos`` files (or one file)
    state_dir: str  #: snapshot and outbox files
    sources: list[SourceConfig]
    channels: dict[str, dict[str, Any]]  #: channel name → {plugin = "…", …the plugin's keys}
    reference: str = ""  #: reference data folder (cells.csv, tags.jsonl, lists/, kb.csv)
    templates: str = ""  #: the template catalogue; default: templates.toml in the scenarios folder, if there
    tz: str = DEFAULT_TZ
    time: TimeConfig = msgspec.field(default_factory=TimeConfig)
    snapshot: SnapshotConfig = msgspec.field(default_factory=SnapshotConfig)
    outbox: dict[str, Any] = msgspec.field(default_factory=dict)  #: engine.OutboxConfig keys but ``directory``
    log: LogConfig = msgspec.field(default_factory=LogConfig)
    dedup: DedupConfig = msgspec.field(default_factory=DedupConfig)
    reload: ReloadConfig = msgspec.field(default_factory=ReloadConfig)
    http: HttpConfig = msgspec.field(default_factory=HttpConfig)
    feedback: FeedbackConfig = msgspec.field(default_factory=FeedbackConfig)
    #: a JSON-lines file each tag write of a ``set`` clause is appended to ({scenario, msisdn, ts, tags}, as
    #: ``kairos replay --tags-out`` writes); empty: none. Writes decided again after a restart are appended again
    tags_out: str = ""

    @property
    def partitioned(self) -> bool:
        """State is kept per partition (a partitioned or Kafka source)."""
        return isinstance(self.sources[0], (PartitionedSourceConfig, KafkaSourceConfig))

    @property
    def partition_count(self) -> int:
        s = self.sources[0]
        return s.partitions if isinstance(s, (PartitionedSourceConfig, KafkaSourceConfig)) else 1

    @property
    def dedup_window_ms(self) -> int | None:
        """The duplicate window in force (never shorter than the allowed lateness); None: off."""
        if not self.dedup.enabled:
            return None
        return max(self.dedup.window_ms, self.time.allowed_lateness_ms)

    @property
    def snapshot_path(self) -> Path:
        return Path(self.state_dir) / "snapshot.bin"

    @property
    def outbox_dir(self) -> Path:
        return Path(self.state_dir) / "outbox"

    @property
    def partitions_dir(self) -> Path:
        return Path(self.snapshot.partitions_dir or Path(self.state_dir) / "partitions")

    @property
    def audit_path(self) -> Path:
        return Path(self.reload.audit_log or Path(self.state_dir) / "audit.jsonl")


def load_config(path: str | Path) -> Config:
    """Read and validate a configuration file; paths in it become absolute."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read the configuration: {e.strerror}") from None
    try:
        cfg = msgspec.toml.decode(raw, type=Config)
    except msgspec.ValidationError as e:
        raise ConfigError(f"{p}: {_explain(str(e))} (see kairos.example.toml for every key)") from None
    except msgspec.DecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    base = p.resolve().parent
    if not cfg.sources:
        raise ConfigError(f"{p}: `sources` is empty: add at least one [[sources]] table (kind = \"file\" or \"stdin\")")
    if not cfg.channels:
        raise ConfigError(f"{p}: `channels` is empty: add a [channels.NAME] table for every channel the scenarios use")
    for name, section in cfg.channels.items():
        if not isinstance(section.get("plugin", name), str):
            raise ConfigError(f"{p}: `channels.{name}.plugin` must be a string: the registered channel plugin to use")
    kinds = [s for s in cfg.sources if isinstance(s, (PartitionedSourceConfig, KafkaSourceConfig))]
    if kinds and len(cfg.sources) > 1:
        raise ConfigError(f"{p}: a `partitioned` or `kafka` source must be the only source: state is kept per "
                          "partition; feed other inputs into the partitions, or run them in another instance")
    for s in kinds:
        if s.partitions < 1:
            raise ConfigError(f"{p}: `sources[0].partitions` must be at least 1")
        if isinstance(s, PartitionedSourceConfig) and any(not 0 <= o < s.partitions for o in s.owned):
            raise ConfigError(f"{p}: `sources[0].owned` names a partition outside 0..{s.partitions - 1}")
    sources = [
        msgspec.structs.replace(s, path=str(base / s.path), name=s.name or s.path)
        if isinstance(s, FileSourceConfig)
        else msgspec.structs.replace(s, path=str(base / s.path)) if isinstance(s, PartitionedSourceConfig)
        else s
        for s in cfg.sources
    ]
    for key, listen in (("http.listen", cfg.http.listen), ("feedback.listen", cfg.feedback.listen)):
        if listen:
            host, _, port = listen.rpartition(":")
            if not host or not port.isdigit() or int(port) > 65535:
                raise ConfigError(f"{p}: `{key}` is {listen!r}: write HOST:PORT, e.g. \"127.0.0.1:8787\"")
    fk = cfg.feedback.kafka
    if fk is not None:
        if not fk.bootstrap_servers.strip() or not fk.topic.strip():
            raise ConfigError(f"{p}: `feedback.kafka` needs `bootstrap_servers` (HOST:PORT[,HOST:PORT…] of the brokers) "
                              "and `topic` (the topic the channels' responses are written to)")
        if fk.max_records < 1:
            raise ConfigError(f"{p}: `feedback.kafka.max_records` must be at least 1")
    if cfg.dedup.window_ms < 0:
        raise ConfigError(f"{p}: `dedup.window_ms` is {cfg.dedup.window_ms}: write 0 or more milliseconds")
    names = [getattr(s, "name", s.__struct_config__.tag) for s in sources]
    if len(set(names)) != len(names):
        raise ConfigError(f"{p}: two sources have the same name; give each [[sources]] a distinct `name`")
    return msgspec.structs.replace(
        cfg,
        scenarios=str(base / cfg.scenarios),
        state_dir=str(base / cfg.state_dir),
        reference=str(base / cfg.reference) if cfg.reference else "",
        templates=str(base / cfg.templates) if cfg.templates else "",
        tags_out=str(base / cfg.tags_out) if cfg.tags_out else "",
        sources=sources,
        reload=msgspec.structs.replace(cfg.reload, audit_log=str(base / cfg.reload.audit_log))
        if cfg.reload.audit_log else cfg.reload,
        snapshot=msgspec.structs.replace(cfg.snapshot, partitions_dir=str(base / cfg.snapshot.partitions_dir))
        if cfg.snapshot.partitions_dir else cfg.snapshot,
        feedback=msgspec.structs.replace(cfg.feedback, files=[str(base / f) for f in cfg.feedback.files]),
        channels={name: _file_channel_path(section, name, base) for name, section in cfg.channels.items()},
    )


def _file_channel_path(section: dict[str, Any], name: str, base: Path) -> dict[str, Any]:
    """The built-in file channel's ``path``, relative to the configuration's folder like every other path
    (it was left to the daemon's working folder, so a config run from elsewhere wrote somewhere else)."""
    path = section.get("path")
    if section.get("plugin", name) != "file" or not isinstance(path, str) or not path:
        return section
    return {**section, "path": str(base / path)}


def _address(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host, int(port)


def _explain(text: str) -> str:
    """msgspec's "… - at `$.time.x`" as "`time.x`: …"."""
    if " - at `$." in text:
        message, where = text.rsplit(" - at `$.", 1)
        return f"`{where.rstrip('`')}`: {message}"
    return text
