"""The built-in event types are described as a catalogue describes custom ones, and cannot drift.

``kairos/engine/events.toml`` describes every built-in type; these tests hold
it equal to the Structs that decode (every type, field, annotation with its
bounds, requiredness and default), and ``docs/events.md``'s tables equal to
what that description generates, so the reference a user reads is the one the
decoder applies.
"""

from __future__ import annotations

import typing
from pathlib import Path

import msgspec
import pytest

from kairos.engine import builtin_description, event_table, event_types
from kairos.engine._events import BUILTIN_TYPES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"
BEGIN, END = "<!-- event tables: generated from kairos/engine/events.toml -->", "<!-- end of the event tables -->"


def test_the_description_names_every_built_in_type_in_the_registrys_order():
    assert [name for name in event_types() if name in BUILTIN_TYPES] == [t.name for t in builtin_description()]


@pytest.mark.parametrize("desc", builtin_description(), ids=lambda t: t.name)
def test_each_described_field_is_the_structs_field_with_its_bounds_requiredness_and_default(desc):
    cls = event_types()[desc.name]
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in msgspec.structs.fields(cls) if f.name not in ("ts", "msisdn")}
    assert list(fields) == [f.name for f in desc.fields]
    for f in desc.fields:
        assert hints[f.name] == f.annotation(), f"{desc.name}.{f.name}"
        assert fields[f.name].required == f.required, f"{desc.name}.{f.name}"
        if not f.required:
            assert fields[f.name].default == f.default, f"{desc.name}.{f.name}"


@pytest.mark.parametrize("desc", builtin_description(), ids=lambda t: t.name)
def test_a_struct_built_from_the_description_decodes_as_the_built_in_does(desc):
    built = desc.struct()
    cls = event_types()[desc.name]
    assert built.__struct_config__.tag == cls.__struct_config__.tag
    assert set(built.__struct_fields__) == set(cls.__struct_fields__)


def test_docs_events_md_lists_every_type_and_field_as_the_description_says():
    text = DOCS.read_text(encoding="utf-8")
    tables = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert event_table(builtin_description()) == tables, (
        "docs/events.md's tables differ from kairos/engine/events.toml; put there:\n\n"
        + event_table(builtin_description()))
