"""Event catalogues: event types declared in a TOML file instead of in code.

A scenario folder may carry an ``events.toml`` declaring new event types; each
becomes a msgspec Struct built as the built-ins are (a subclass of ``Event``,
tagged with its name, ``kw_only``, ``gc=False``) and is registered, so the
checker's schema, the decoders and the dispatch derive from it as from a
built-in. The built-in types are described in the same format
(``kairos/engine/events.toml``; a test keeps that description and the Structs
equal), and the event reference (``docs/events.md``) is generated from it::

    [voucher_redeemed]
    amount = "number"                          # required, within ±2**53
    code = "string"
    note = {type = "string", required = false} # may be omitted: null
    tier = {values = ["gold", "silver"], default = "silver"}
    vip = {type = "bool", default = false}
    points = {type = "number", min = 0, max = 1_000_000}

One catalogue is in use per process (``use_catalogue`` replaces the previous
one): the command-line commands load one, and the daemon's stays as it started.
"""

from __future__ import annotations

import keyword
import re
import tomllib
import typing
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from kairos.engine import _events
from kairos.engine._events import Event, tag_value_problem

#: the field types a catalogue may name
KINDS = ("string", "number", "bool", "object")
#: the bound of a number field without ``min``/``max`` (and the widest allowed): every int in it is exact
#: as a float, and fits a snapshot (msgpack: 64-bit ints)
NUMBER_LIMIT = 2**53
#: fields every event has; a catalogue does not declare them
COMMON = {"type": "the event type's name", "ts": "event time in epoch ms",
          "msisdn": "the subscriber's number"}
#: words of the scenario language a type name would collide with (``when not where …`` cannot parse,
#: ``tags.x`` and ``last.x`` would be ambiguous)
LANGUAGE_WORDS = frozenset({"not", "every", "dwell", "and", "or", "in", "as", "where", "within", "true", "false",
                            "null", "last", "tags", "now", "msisdn", "list", "area", "in_area"})
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_FIELD_KEYS = {"type", "values", "required", "default", "min", "max", "about"}
_TYPE_KEYS = {"about"}


class CatalogueError(Exception):
    """A catalogue file that cannot be used: where (1-based line and column) and what."""

    def __init__(self, file: str, line: int, col: int, message: str, source_line: str) -> None:
        super().__init__(f"{file}:{line}:{col}: error: {message}")
        self.file, self.line, self.col, self.message, self.source_line = file, line, col, message, source_line


class FieldDesc(msgspec.Struct, frozen=True):
    """One declared field: its kind, whether a line must carry it, its value when omitted."""

    name: str
    kind: str  # one of KINDS, or "enum"
    required: bool = True
    default: Any = None
    values: tuple[str, ...] = ()
    min: int | float | None = None
    max: int | float | None = None
    about: str = ""

    def annotation(self) -> Any:
        """The msgspec annotation of the field, as the built-ins spell theirs."""
        if self.kind == "enum":
            base: Any = Literal[self.values]
        elif self.kind == "number":
            lo = -NUMBER_LIMIT if self.min is None else self.min
            hi = NUMBER_LIMIT if self.max is None else self.max
            base = Annotated[int, Meta(ge=lo, le=hi)] | Annotated[float, Meta(ge=lo, le=hi)]
        else:
            base = {"string": str, "bool": bool, "object": dict[str, Any]}[self.kind]
        return base | None if not self.required and self.default is None else base

    def spelled(self) -> str:
        """The field's type in words, for the reference table."""
        if self.kind == "enum":
            text = " / ".join(f"`{v}`" for v in self.values)
        elif self.kind == "number":
            text = "number"
            if self.min is not None or self.max is not None:
                text += f" {_num(self.min)} … {_num(self.max)}"
        else:
            text = self.kind
        return text + (" or null" if not self.required and self.default is None else "")


class TypeDesc(msgspec.Struct, frozen=True):
    """One declared event type and its fields, in the file's order."""

    name: str
    fields: tuple[FieldDesc, ...]
    about: str = ""
    file: str = ""
    line: int = 0

    def struct(self) -> type[Event]:
        """The event Struct: a subclass of ``Event`` tagged ``name``, as the built-ins are."""
        spec = [(f.name, f.annotation()) if f.required else (f.name, f.annotation(), f.default)
                for f in self.fields]
        objects = tuple(f.name for f in self.fields if f.kind == "object")
        namespace = {"__post_init__": _object_check(objects)} if objects else None
        name = "".join(part.title() for part in self.name.split("_")) or self.name
        cls = msgspec.defstruct(name, spec, bases=(Event,), tag=self.name, kw_only=True, gc=False,
                                namespace=namespace, module=__name__)
        return typing.cast(type[Event], cls)


def _object_check(names: tuple[str, ...]) -> Any:
    """A ``__post_init__`` refusing what ``check_tags`` refuses in an object field: a snapshot holds the event."""
    def __post_init__(self: Any) -> None:
        for name in names:
            value = getattr(self, name)
            where = None if value is None else tag_value_problem(value)
            if where is not None:
                raise ValueError(f"Expected {where.replace('a tag', 'a')} - at `$.{name}`")
    return __post_init__


def _num(value: int | float | None) -> str:
    if value is None:
        return "±2^53"
    if isinstance(value, int) and abs(value) >= 10**6 and str(abs(value)).rstrip("0") == "1":
        return f"{'−' if value < 0 else ''}10^{len(str(abs(value))) - 1}"
    return f"{value:,}".replace(",", " ") if isinstance(value, int) else str(value)


def parse_catalogue(text: str, file: str, builtin: bool = False) -> list[TypeDesc]:
    """The types ``text`` declares; raises ``CatalogueError`` at the line of the first problem. Outside the
    built-ins' own description (``builtin``), a type may not take a built-in's name."""
    lines = text.splitlines()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        line, col = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise _error(file, lines, line, col, f"not valid TOML: {message}") from None
    at = _Locator(file, lines)
    out = []
    for name, table in data.items():
        if not isinstance(table, dict):
            raise at.error(name, None, None, f"'{name}' must be a table: write [{name}] and its fields below it")
        if not _NAME.fullmatch(name):
            raise at.error(name, None, None, f"event type '{name}' is not a name: lower-case letters, digits "
                           "and _, starting with a letter")
        if name in LANGUAGE_WORDS:
            raise at.error(name, None, None, f"event type '{name}' is a word of the scenario language: give the "
                           "type another name")
        if not builtin and name in _events.BUILTIN_TYPES:
            raise at.error(name, None, None, f"event type '{name}' is a built-in type: it cannot be redefined "
                           "(give the new type another name)")
        fields = tuple(_field(at, name, key, value) for key, value in table.items() if key not in _TYPE_KEYS)
        about = table.get("about", "")
        out.append(TypeDesc(name, fields, about if isinstance(about, str) else "", file, at.header(name)[0]))
    return out


def _field(at: _Locator, type_name: str, name: str, value: Any) -> FieldDesc:
    """One field's declaration: a type name, or a table of ``type``/``values``, ``required``, ``default``…"""
    if name in COMMON:
        raise at.error(type_name, name, None, f"'{name}' is a field every event has ({COMMON[name]}): "
                       "do not declare it")
    if not _NAME.fullmatch(name) or keyword.iskeyword(name):
        raise at.error(type_name, name, None, f"field '{name}' is not a name: lower-case letters, digits and _, "
                       "starting with a letter, and not a Python keyword")
    decl = {"type": value} if isinstance(value, str) else value
    if not isinstance(decl, dict):
        raise at.error(type_name, name, None, f"field '{name}': give a type ({_kinds()}) or a table such as "
                       '{type = "string", required = false}')
    unknown = sorted(set(decl) - _FIELD_KEYS)
    if unknown:
        raise at.error(type_name, name, unknown[0], f"field '{name}': unknown key '{unknown[0]}' (a field may have "
                       f"{', '.join(sorted(_FIELD_KEYS))})")
    values = decl.get("values")
    kind = decl.get("type", "enum" if values is not None else None)
    if values is not None:
        if kind not in ("enum", "string") or not isinstance(values, list) or not values \
                or not all(isinstance(v, str) for v in values):
            raise at.error(type_name, name, "values", f"field '{name}': values must be a non-empty list of "
                           "strings, and the field's type string (or none)")
        kind = "enum"
    if kind not in KINDS and kind != "enum":
        hint = _suggest(str(kind), KINDS)
        raise at.error(type_name, name, f'"{kind}"' if isinstance(kind, str) else None,
                       f"field '{name}': unknown type {kind!r} (known: {_kinds()}){hint}")
    has_default = "default" in decl
    required = decl.get("required", not has_default)
    if not isinstance(required, bool) or (required and has_default):
        raise at.error(type_name, name, "required", f"field '{name}': required is true or false, and a field "
                       "with a default is not required")
    bounds = {k: decl.get(k) for k in ("min", "max")}
    for k, bound in bounds.items():
        if bound is None:
            continue
        if kind != "number" or isinstance(bound, bool) or not isinstance(bound, (int, float)) \
                or abs(bound) > NUMBER_LIMIT:
            raise at.error(type_name, name, k, f"field '{name}': {k} is a number within ±2**53, for a number "
                           "field only")
    if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
        raise at.error(type_name, name, "min", f"field '{name}': min is above max")
    about = decl.get("about", "")
    desc = FieldDesc(name, kind, required, decl.get("default"), tuple(values or ()), bounds["min"], bounds["max"],
                     about if isinstance(about, str) else "")
    if has_default:
        try:
            msgspec.convert(desc.default, desc.annotation(), strict=True)
        except msgspec.ValidationError as e:
            raise at.error(type_name, name, "default", f"field '{name}': the default is not a value of the "
                           f"field ({e})") from None
    return desc


def _kinds() -> str:
    return ", ".join(f'"{k}"' for k in KINDS) + ", or values = [...]"


def _suggest(word: str, known: tuple[str, ...]) -> str:
    import difflib

    close = difflib.get_close_matches(word, known, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


class _Locator:
    """Finds the line of a table, of a key in it, of a word on that line: tomllib keeps no positions."""

    def __init__(self, file: str, lines: list[str]) -> None:
        self.file, self.lines = file, lines

    def header(self, table: str) -> tuple[int, int]:
        pattern = re.compile(rf'\s*\[\s*("?){re.escape(table)}\1\s*\]')
        for i, text in enumerate(self.lines):
            if pattern.match(text):
                return i + 1, text.index("[") + 1
        return 1, 1

    def error(self, table: str, key: str | None, word: str | None, message: str) -> CatalogueError:
        line, col = self.header(table)
        if key is not None:
            pattern = re.compile(rf'\s*("?){re.escape(key)}\1\s*=')
            for i in range(line, len(self.lines)):
                if self.lines[i].lstrip().startswith("["):
                    break
                if pattern.match(self.lines[i]):
                    line, col = i + 1, len(self.lines[i]) - len(self.lines[i].lstrip()) + 1
                    if word is not None and word in self.lines[i][col:]:
                        col = self.lines[i].index(word, col) + 1
                    break
        return _error(self.file, self.lines, line, col, message)


def _error(file: str, lines: list[str], line: int, col: int, message: str) -> CatalogueError:
    return CatalogueError(file, line, col, message, lines[line - 1] if 0 < line <= len(lines) else "")


def load_catalogue(path: str | Path) -> list[TypeDesc]:
    """The types a catalogue file declares; raises ``CatalogueError`` (``OSError`` if it cannot be read)."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CatalogueError(str(path), 1, 1, "the file is not UTF-8 text; save it as UTF-8", "") from None
    return parse_catalogue(text, str(path))


def builtin_description() -> list[TypeDesc]:
    """The built-in types as ``kairos/engine/events.toml`` describes them (the Structs are the truth; a
    test keeps the two equal)."""
    text = resources.files("kairos.engine").joinpath("events.toml").read_text("utf-8")
    return parse_catalogue(text, "kairos/engine/events.toml", builtin=True)


_in_use: list[TypeDesc] = []


def use_catalogue(types: list[TypeDesc]) -> None:
    """Register ``types`` in place of the catalogue used before: one per process, so that two commands
    run in one process (tests) do not see each other's types. Raises ``CatalogueError`` when two
    files declare one type differently."""
    seen: dict[str, TypeDesc] = {}
    for t in types:
        first = seen.setdefault(t.name, t)
        if first is not t and first.fields != t.fields:
            raise CatalogueError(t.file, t.line, 1, f"event type '{t.name}' is also declared, differently, in "
                                 f"{first.file}:{first.line}: declare it once, or alike", f"[{t.name}]")
    for old in _in_use:
        _events.unregister_event_type(old.name)
    _in_use.clear()
    for t in seen.values():
        _events.register_event_type(t.struct())
        _in_use.append(t)


def catalogue_in_use() -> list[TypeDesc]:
    """The custom types registered by ``use_catalogue`` (a copy)."""
    return list(_in_use)


def event_table(types: list[TypeDesc]) -> str:
    """The reference tables of ``types`` in Markdown: the types and where they come from, then one row per
    field (a type without fields has one)."""
    kinds = ["| type | from | fields |", "| --- | --- | --- |"]
    kinds += [f"| `{t.name}` | {t.about} | {', '.join(f'`{f.name}`' for f in t.fields) or '—'} |" for t in types]
    rows = ["| type | field | value | required | when omitted | about |", "| --- | --- | --- | --- | --- | --- |"]
    for t in types:
        if not t.fields:
            rows.append(f"| `{t.name}` | — | — | — | — | {t.about} |")
        for f in t.fields:
            omitted = "—" if f.required else ("null" if f.default is None else f"`{_json(f.default)}`")
            rows.append(f"| `{t.name}` | `{f.name}` | {f.spelled()} | {'yes' if f.required else 'no'} | "
                        f"{omitted} | {f.about} |")
    return "\n".join(kinds) + "\n\n" + "\n".join(rows)


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()
