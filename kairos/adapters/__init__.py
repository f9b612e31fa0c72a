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
The channel-team guide is docs/channels.md. A public name loads its module when it is first used
(``__getattr__``): the template catalogue does not load the channels.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kairos.adapters._calltask import CallChannel, CallConfig
    from kairos.adapters._channel import (Channel, ChannelConfigError, Feedback, FeedbackSink, Outcome, SendContext,
                                          wall_ms)
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

#: each module's public names: a name's module is imported at its first use, so `kairos check` (the template
#: catalogue) loads no channel, outbox or HTTP code, nor their libraries
_MODULES = {
    "_calltask": "CallChannel CallConfig",
    "_channel": "Channel ChannelConfigError Feedback FeedbackSink Outcome SendContext wall_ms",
    "_feedback": "FeedbackFile FeedbackServer parse_feedback",
    "_filechannel": "FileChannel FileChannelConfig",
    "_grants": "GrantFolder read_grants",
    "_h11server": "serve_connection",
    "_kafkachannel": "KafkaChannel KafkaChannelConfig",
    "_partitions": "partition_file partition_files partition_of split_file",
    "_ledger": "Ledger read_ledger",
    "_outbox": "ChannelLimits DeadLetter DecidedSend LaneStats Outbox OutboxConfig OutboxStats StoreBusy",
    "_popup": "PopupChannel PopupConfig sign",
    "_registry": "GROUP ChannelLoadError create_channel discover_channels",
    "_smpp": "SmsChannel SmsConfig",
    "_sources": "FilePosition FileTail StdinSource",
    "_templates": "TemplateCatalog TemplateError TemplateUse",
}
_EXPORTS = {
    public.partition("=")[0]: (module, public.partition("=")[2] or public)
    for module, names in _MODULES.items()
    for public in names.split()
}


if not TYPE_CHECKING:  # type checkers read the imports above: a name they do not list stays an error

    def __getattr__(name: str) -> Any:
        """Import a public name's module at its first use (PEP 562) and keep the name here."""
        try:
            module, attr = _EXPORTS[name]
        except KeyError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
