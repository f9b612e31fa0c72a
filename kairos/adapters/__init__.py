"""Channels and their plugin interface: how a decided send leaves Kairos and how its feedback comes back.

A channel is a ``Channel`` subclass registered under the ``kairos.channels``
entry-point group (``discover_channels``); Kairos's own ``sms`` (SMPP 3.4),
``popup`` (signed HTTP to the app's push gateway), ``kafka`` (a record per
send on a topic) and ``call`` (call-centre
HTTP endpoint or daily CSV task file) register exactly the way a channel
team's plugin does. A channel gets one ``SendContext`` and answers one
``Outcome``. The ``Outbox`` drives them: it takes each send the engine decides
(``submit``, synchronous) and owns delivery — per-channel rate and concurrency
limits, retries with backoff, the journal and ledger that make a send go out
once across restarts (``read_ledger`` reads the ledger back), and the
dead-letter file. Beside them: the ``TemplateCatalog`` that renders message
text at send time and answers ``kairos check``'s questions, and the feedback
sources (an HTTP endpoint and a file) that turn channel callbacks into
``feedback`` events, the ``GrantFolder`` that shares a channel capacity's places between
processes, and the daemon's event sources (a rotation-safe file or
directory tail, standard input) that hand out whole JSON lines with their
position. This package imports nothing else of the project, and the engine
does not import it: the application hands the engine's sends to the outbox.
The channel-team guide is the README section "Channels: the guide for channel
teams".
"""

from kairos.adapters._calltask import CallChannel, CallConfig
from kairos.adapters._channel import Channel, ChannelConfigError, Feedback, FeedbackSink, Outcome, SendContext, wall_ms
from kairos.adapters._feedback import FeedbackFile, FeedbackServer, parse_feedback
from kairos.adapters._filechannel import FileChannel, FileChannelConfig
from kairos.adapters._grants import GrantFolder, read_grants
from kairos.adapters._h11server import serve_connection
from kairos.adapters._kafkachannel import KafkaChannel, KafkaChannelConfig
from kairos.adapters._partitions import partition_file, partition_files, partition_of, split_file
from kairos.adapters._ledger import Ledger, read_ledger
from kairos.adapters._outbox import (
    ChannelLimits, DeadLetter, DecidedSend, LaneStats, Outbox, OutboxConfig, OutboxStats, StoreBusy,
)
from kairos.adapters._popup import PopupChannel, PopupConfig, sign
from kairos.adapters._registry import GROUP, ChannelLoadError, create_channel, discover_channels
from kairos.adapters._smpp import SmsChannel, SmsConfig
from kairos.adapters._sources import FilePosition, FileTail, StdinSource
from kairos.adapters._templates import TemplateCatalog, TemplateError, TemplateUse

__all__ = [
    "CallChannel",
    "CallConfig",
    "Channel",
    "ChannelConfigError",
    "ChannelLimits",
    "ChannelLoadError",
    "DeadLetter",
    "DecidedSend",
    "Feedback",
    "FeedbackFile",
    "FeedbackServer",
    "FeedbackSink",
    "FileChannel",
    "FileChannelConfig",
    "FilePosition",
    "FileTail",
    "GROUP",
    "GrantFolder",
    "KafkaChannel",
    "KafkaChannelConfig",
    "LaneStats",
    "Ledger",
    "Outbox",
    "OutboxConfig",
    "OutboxStats",
    "Outcome",
    "PopupChannel",
    "PopupConfig",
    "SendContext",
    "SmsChannel",
    "SmsConfig",
    "StoreBusy",
    "StdinSource",
    "TemplateCatalog",
    "TemplateError",
    "TemplateUse",
    "create_channel",
    "discover_channels",
    "parse_feedback",
    "partition_file",
    "partition_files",
    "partition_of",
    "read_grants",
    "read_ledger",
    "serve_connection",
    "sign",
    "split_file",
    "wall_ms",
]
