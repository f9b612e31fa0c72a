"""The template catalogue: template id → text per channel with ``{param}`` placeholders, rendered at send time.

``templates.toml`` (see ``templates.example.toml``)::

    [templates."offer.data_addon"]
    sms = "您本月流量已用{pct}%，回复1订购{pack}流量包。"
    popup = "流量快用完了？{pack}流量包，点此订购"
    default = "..."        # any channel without its own text

A ``[display.PARAM]`` table gives people's names for parameter values that
are codes (``[display.app] tencent_video = "腾讯视频"``): a ``{app}`` placeholder
then shows the name; a value without one shows as it is.

Placeholders are bare names (``{pct}``), optionally with a format spec
(``{amount:.2f}``); ``{{`` and ``}}`` are literal braces. ``problems`` is what
``kairos check`` asks: does every action name a known template, with text for
its channel, and give every placeholder a parameter?
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["DEFAULT_KEY", "TemplateCatalog", "TemplateError", "TemplateUse"]

DEFAULT_KEY = "default"
_FORMATTER = string.Formatter()


class TemplateError(ValueError):
    """A catalogue that cannot be loaded, or a template that cannot be rendered."""


class TemplateUse(msgspec.Struct, frozen=True):
    """One place a template is used: by a scenario action on ``channel`` with these ``with`` keys."""

    template: str
    channel: str
    params: frozenset[str]


class _Text(msgspec.Struct, frozen=True):
    """One channel's text of a template, with the placeholder names it needs."""

    source: str
    names: frozenset[str]


class TemplateCatalog:
    """Templates by id, each a text per channel (or a ``default`` text for every channel)."""

    def __init__(self, templates: Mapping[str, Mapping[str, str]], origin: str = "<templates>",
                 display: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.origin = origin
        self.display: dict[str, dict[str, str]] = {}
        for param, names in (display or {}).items():
            if not isinstance(names, Mapping) or not all(isinstance(v, str) for v in names.values()):
                raise TemplateError(f"{origin}: [display.{param}] must be a table of value = \"name\"")
            self.display[param] = dict(names)
        self._texts: dict[str, dict[str, _Text]] = {}
        for template_id, per_channel in templates.items():
            if not isinstance(per_channel, Mapping) or not per_channel:
                raise TemplateError(f"{origin}: template {template_id!r} must be a table of channel = \"text\"")
            texts: dict[str, _Text] = {}
            for channel, text in per_channel.items():
                if not isinstance(text, str):
                    raise TemplateError(
                        f"{origin}: template {template_id!r}, channel {channel!r}: text must be a string"
                    )
                where = f"{origin}: template {template_id!r}, channel {channel!r}"
                texts[channel] = _Text(text, _placeholders(text, where))
            self._texts[template_id] = texts

    @classmethod
    def load(cls, path: str | Path) -> TemplateCatalog:
        """Read a ``templates.toml`` catalogue."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise TemplateError(f"{path}: {exc}") from None
        templates = data.get("templates")
        if not isinstance(templates, dict):
            raise TemplateError(f"{path}: expected a [templates.\"ID\"] table per template")
        display = data.get("display", {})
        if not isinstance(display, dict):
            raise TemplateError(f"{path}: [display] must hold one [display.PARAM] table per parameter")
        return cls(templates, origin=str(path), display=display)

    def __contains__(self, template_id: object) -> bool:
        return template_id in self._texts

    def ids(self) -> list[str]:
        """The template ids, sorted."""
        return sorted(self._texts)

    def placeholders(self, template_id: str, channel: str) -> frozenset[str]:
        """The parameter names the template's text for ``channel`` needs."""
        return self._text(template_id, channel).names

    def render(self, template_id: str, channel: str, params: Mapping[str, Any]) -> str:
        """The template's text for ``channel`` with ``params`` filled in."""
        text = self._text(template_id, channel)
        missing = sorted(text.names - params.keys())
        if missing:
            raise TemplateError(f"template {template_id!r} for {channel}: no value for {', '.join(missing)}")
        if self.display:
            params = {k: self._shown(k, v) for k, v in params.items()}
        try:
            return text.source.format_map(params)
        except (ValueError, TypeError) as exc:
            raise TemplateError(f"template {template_id!r} for {channel}: {exc}") from None

    def problems(self, uses: Iterable[TemplateUse | tuple[str, str, Iterable[str]]]) -> list[str]:
        """What is wrong with these uses, one message each (unknown template or channel, unfilled placeholder)."""
        found: list[str] = []
        for use in uses:
            if not isinstance(use, TemplateUse):
                template, channel, params = use
                use = TemplateUse(template, channel, frozenset(params))
            per_channel = self._texts.get(use.template)
            if per_channel is None:
                found.append(f"unknown template {use.template!r}{_suggest(use.template, self._texts)}")
                continue
            text = per_channel.get(use.channel) or per_channel.get(DEFAULT_KEY)
            if text is None:
                found.append(
                    f"template {use.template!r} has no text for channel {use.channel!r} "
                    f"(it has: {', '.join(sorted(per_channel))})"
                )
                continue
            for name in sorted(text.names - use.params):
                found.append(f"template {use.template!r} for {use.channel} needs parameter {name!r}, "
                             "which the action does not give")
        return found

    def _shown(self, param: str, value: Any) -> Any:
        """The display name of a coded value, or the value itself."""
        names = self.display.get(param)
        if names is None or not isinstance(value, str):
            return value
        return names.get(value, value)

    def _text(self, template_id: str, channel: str) -> _Text:
        per_channel = self._texts.get(template_id)
        if per_channel is None:
            raise TemplateError(f"unknown template {template_id!r}")
        text = per_channel.get(channel) or per_channel.get(DEFAULT_KEY)
        if text is None:
            raise TemplateError(f"template {template_id!r} has no text for channel {channel!r}")
        return text


def _placeholders(text: str, where: str) -> frozenset[str]:
    """The names of ``text``'s placeholders; only bare names are allowed (no ``{a.b}``, ``{a[0]}``, ``{}``)."""
    try:
        fields = [field for _literal, field, _spec, _conversion in _FORMATTER.parse(text) if field is not None]
    except ValueError as exc:  # unbalanced braces
        raise TemplateError(f"{where}: {exc}") from None
    for field in fields:
        if not field.isidentifier():
            raise TemplateError(f"{where}: placeholder {{{field}}} must be a parameter name")
    return frozenset(fields)


def _suggest(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for exactly one close match, else nothing."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=2, cutoff=0.8)
    return f" (did you mean {close[0]!r}?)" if len(close) == 1 else ""
