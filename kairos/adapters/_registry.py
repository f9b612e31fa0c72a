"""Finding channels: every channel, Kairos's own included, is an entry point in ``kairos.channels``."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from kairos.adapters._channel import Channel, FeedbackSink

__all__ = ["GROUP", "ChannelLoadError", "create_channel", "discover_channels"]

GROUP = "kairos.channels"


class ChannelLoadError(Exception):
    """An entry point in ``kairos.channels`` is broken, clashes with another, or is not a ``Channel``."""


def discover_channels() -> dict[str, type[Channel]]:
    """Load every registered channel class, by entry-point name (the name scenarios use)."""
    found: dict[str, type[Channel]] = {}
    origin: dict[str, str] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        where = _where(ep)
        if ep.name in found:
            if origin[ep.name] == where:  # the same distribution seen twice on sys.path
                continue
            raise ChannelLoadError(f"channel {ep.name!r} is registered twice: by {origin[ep.name]} and by {where}")
        try:
            cls = ep.load()
        except Exception as exc:  # a plugin's import error must name the plugin
            raise ChannelLoadError(f"channel {ep.name!r} ({ep.value}, from {where}) failed to load: {exc!r}") from exc
        if not (isinstance(cls, type) and issubclass(cls, Channel)):
            raise ChannelLoadError(
                f"channel {ep.name!r} ({ep.value}, from {where}) is not a subclass of kairos.adapters.Channel"
            )
        found[ep.name] = cls
        origin[ep.name] = where
    return found


def create_channel(
    name: str,
    config: Mapping[str, Any] | None = None,
    *,
    feedback: FeedbackSink | None = None,
    registry: Mapping[str, type[Channel]] | None = None,
) -> Channel:
    """Instantiate the channel registered as ``name`` from its configuration mapping."""
    classes = discover_channels() if registry is None else registry
    try:
        cls = classes[name]
    except KeyError:
        registered = ", ".join(sorted(classes)) or "none"
        raise ChannelLoadError(f"no channel named {name!r}; registered: {registered}") from None
    return cls.from_config(config, name=name, feedback=feedback)


def _where(ep: EntryPoint) -> str:
    """The distribution that declared an entry point, for error messages."""
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else ep.value
