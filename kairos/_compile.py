"""From scenario files to a checked plan: where the language (``dsl``) meets the runtime's event schema.

Every command that runs scenarios compiles them here — ``kairos check``,
``replay`` and ``explain``, the demo, the daemon at start and at each reload —
so they all accept and refuse the same files: compiled against the engine's
event schema and the known channels, checked against the template catalogue
(``kairos._template_check``), and, for ``check``, built once over stand-in
reference data. With a reference folder, the list, area and tag names the
scenarios use are checked against it (``dsl.check_names``) and reported at
their use.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import msgspec

from kairos import dsl
from kairos._template_check import check_templates
from kairos.adapters import TemplateCatalog, TemplateError
from kairos.engine import (CatalogueError, Engine, Reference, ReferenceNames, TypeDesc, event_schema, load_catalogue,
                           use_catalogue)
from kairos.plan import Plan

if TYPE_CHECKING:
    from kairos._config import Config

#: the channels a scenario may name outside the daemon (which knows its configured ones)
CHANNELS = frozenset({"sms", "popup", "call"})
#: a scenario folder's event catalogue: the event types it declares beside its ``*.kairos`` files
EVENTS_FILE = "events.toml"


def compile_plan(paths: Sequence[str | Path]) -> Plan:
    """Compile scenario (and policy) files against the engine's event schema, with the event types the
    ``events.toml`` beside them declare registered first (so the decoders built after know them too)."""
    read_catalogues(paths, use=True)
    return dsl.compile_paths(list(paths), event_schema(), CHANNELS)


def catalogue_files(paths: Sequence[str | Path]) -> list[Path]:
    """The ``events.toml`` files beside the scenario files ``paths`` name (a folder: every ``*.kairos``
    below it), each once, in the order first met."""
    folders: dict[Path, None] = {}
    for p in map(Path, paths):
        files = sorted(p.rglob("*.kairos")) if p.is_dir() else [p]
        folders.update((f.parent, None) for f in files)
        if p.is_dir():
            folders.setdefault(p, None)
    return [folder / EVENTS_FILE for folder in folders if (folder / EVENTS_FILE).is_file()]


def read_catalogues(paths: Sequence[str | Path], use: bool = False) -> list[TypeDesc]:
    """The event types the catalogues beside ``paths`` declare, registered in place of those used before
    if ``use``; raises ``dsl.CheckError`` at the line of a catalogue's problem, as a scenario's is shown."""
    try:
        types = [t for f in catalogue_files(paths) for t in load_catalogue(f)]
        if use:
            use_catalogue(types)
        return types
    except CatalogueError as e:
        raise dsl.CheckError([dsl.Diagnostic(e.file, e.line, e.col, e.message, e.source_line)]) from None


def build_check(plan: Plan) -> None:
    """Build an engine for ``plan`` over stand-in reference data holding every list and area it
    names: what ``replay`` and the daemon generate is generated here too, so a plan that passes
    ``check`` also builds. Raises ``BuildError`` (a Kairos bug) naming the scenario."""
    lists = {name for s in plan.scenarios for name in s.lists}
    lists.update(plan.policy.exclude if plan.policy is not None else ())
    areas = frozenset(a for s in plan.scenarios for a in s.areas)
    stand_in = Reference(areas_of_cell={"<check>": areas} if areas else {},
                         lists={name: frozenset() for name in lists})
    Engine(plan, stand_in, sink=_discard)


def check_reference(plan: Plan, folder: str | Path) -> list[dsl.Diagnostic]:
    """``kairos check --reference``: the names of ``plan`` against the folder's, tags included (the
    folder read for its names only); errors for a list or area it lacks, warnings for a tag no
    subscriber has and no scenario writes. Raises ``ReferenceError`` for a folder that cannot be read."""
    names = ReferenceNames.scan(folder)
    return dsl.check_names(plan, lists=names.lists, areas=names.areas, tags=names.tags)


def refuse_unknown_names(plan: Plan, reference: Reference) -> None:
    """Raise ``dsl.CheckError`` at each use of a list or area ``reference`` lacks (``replay``): the
    engine could not bind them, and the author is shown where they are written, as ``check`` shows them."""
    errors = dsl.check_names(plan, lists=reference.lists.keys(), areas=reference.area_names)
    if errors:
        raise dsl.CheckError(errors)


def compile_configured(config: Config, config_path: str | Path = "",
                       catalogue: list[TypeDesc] | None = None) -> tuple[Plan, TemplateCatalog | None]:
    """The daemon's configured scenarios, checked against its configured channels and the template
    catalogue; raises ``StartError`` saying what to fix (for a channel a scenario names that
    ``[channels]`` of ``config_path`` lacks: that, and the table to add). At start (``catalogue`` None)
    the folder's event catalogue is registered; at a reload, ``catalogue`` is the one in use, and a
    folder whose catalogue differs is refused: its sources' decoders were built for the types at start."""
    from kairos._config import StartError  # the daemon's: `kairos check` loads no configuration code

    try:
        types = read_catalogues([config.scenarios], use=catalogue is None)
        if catalogue is not None and _decoded(types) != _decoded(catalogue):
            raise StartError(f"scenarios: the event types of {Path(config.scenarios) / EVENTS_FILE} changed; new "
                             "event types need new decoders: restart the daemon to use them (the running "
                             "scenarios go on)")
        plan = dsl.compile_paths([config.scenarios], event_schema(), frozenset(config.channels))
        path = check_templates(plan, [config.scenarios], config.templates or None)
        return plan, None if path is None else TemplateCatalog.load(path)
    except dsl.CheckError as e:
        raise StartError(_unconfigured_channels(e, config, str(config_path) or "the configuration file")) from None
    except TemplateError as e:
        raise StartError(f"templates: {e}") from None
    except OSError as e:
        raise StartError(f"scenarios: {e}") from None


def _decoded(types: list[TypeDesc]) -> list[tuple[str, tuple[object, ...]]]:
    """What of a catalogue the decoders depend on: names and fields, not the words about them."""
    return [(t.name, tuple(msgspec.structs.replace(f, about="") for f in t.fields)) for t in types]


_UNKNOWN_CHANNEL = re.compile(r"unknown channel '([^']*)'(.*)", re.S)


def _unconfigured_channels(error: dsl.CheckError, config: Config, where: str) -> str:
    """The check's errors, where an unknown channel reads as one missing from ``[channels]`` of the
    configuration ``where``, followed by the table to add for each (the daemon knows only the channels
    configured there, not the ``sms``, ``popup`` and ``call`` that ``check`` and ``replay`` accept)."""
    missing: list[str] = []
    diagnostics = []
    for d in error.diagnostics:
        m = _UNKNOWN_CHANNEL.fullmatch(d.message)
        if m is None or m.group(1) == "any":
            diagnostics.append(d)
            continue
        name, hint = m.groups()
        if name not in missing:
            missing.append(name)
        configured = ", ".join(sorted(config.channels))
        hint = hint if hint.startswith(";") else f" (it has: {configured})"
        message = f"channel '{name}' is not configured: {where} has no [channels.{name}] table{hint}"
        diagnostics.append(msgspec.structs.replace(d, message=message))
    text = "\n".join(d.render() for d in diagnostics)
    if not missing:
        return text
    from importlib.metadata import entry_points  # only on this error: the registered channel plugins

    plugins = sorted({ep.name for ep in entry_points(group="kairos.channels")})
    stanzas = []
    for name in missing:
        if name in plugins:
            stanzas.append(f'[channels.{name}]\nplugin = "{name}"   # then the plugin\'s own keys (docs/channels.md)')
        else:
            stanzas.append(f'[channels.{name}]\nplugin = "file"   # or the plugin your channel team registered '
                           f'({", ".join(plugins)} are installed)\npath = "{name}.jsonl"')
    return (f"{text}\nA scenario sends on {_names(missing)}, which {where} does not configure; add to it:\n\n"
            + "\n\n".join(stanzas))


def _names(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _discard(_: object) -> None:
    return None
