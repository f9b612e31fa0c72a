"""What `kairos check` accepts, the engine builds and replays: catalogue scenarios, mutated.

Each example takes one file of the catalogue and changes it the way hands and
editors do: line breaks, indentation and comments between tokens (inside
parentheses too), swapped operators, other numbers, strings and durations,
lines duplicated or dropped, tokens swapped or deleted. Most mutants are
refused by `check`, with an error; every one that passes must build an engine
and replay the stories of ``scenarios/tests/`` without an exception, and no generated
function may hold the scenario's text (the comments inserted carry a marker).

A few hundred examples run in the suite; a nightly-sized run sets
``KAIROS_FUZZ_EXAMPLES`` (docs/development.md, "Testing"), e.g.
``KAIROS_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/scenarios/test_mutations.py
--hypothesis-show-statistics``, which also prints how many mutants passed
check and ran.
"""

from __future__ import annotations

import io
import json
import linecache
import os
from collections.abc import Callable

from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from kairos import dsl
from kairos.dsl._diagnostics import Source
from kairos.dsl._tokens import DURATION, EOF, ERROR, NAME, NUMBER, OP, STRING, Token, tokenize
from kairos.engine import BindError, Engine, Reference, event_schema, replay
from kairos._compile import CHANNELS, build_check
from kairos._template_check import check_templates
from tests.scenarios.support import EVENTS, REFERENCE, SCENARIOS, catalogue_files

EXAMPLES = int(os.environ.get("KAIROS_FUZZ_EXAMPLES", "500"))
TEMPLATES = str(SCENARIOS / "templates.toml")
#: what every inserted comment holds; no generated function may contain it
MARKER = "fuzzmark"

TEXTS = {p.name: p.read_text(encoding="utf-8") for p in catalogue_files()}
#: every story of ``scenarios/tests/`` in one recording, in time order
RECORDING = b"".join(
    json.dumps(e).encode() + b"\n"
    for e in sorted((json.loads(line) for f in sorted(EVENTS.glob("*.events.jsonl"))
                     for line in f.read_text(encoding="utf-8").splitlines() if line.strip()),
                    key=lambda e: e["ts"])
)
REF = Reference.load(REFERENCE)

_FAMILIES = [("==", "!=", "<", "<=", ">", ">="), ("+", "-", "*", "/"), ("and", "or"),
             ("in", "contains", "matches", "not"), ("true", "false", "null"), ("->", ",", ".", ":")]
_NUMBERS = ["0", "1", "7", "90", "100", "2.5", "0.001", "1000000000000000000", "9" * 300, "1" * 301, "-3"]
_STRINGS = ['""', '"x"', '"video"', '"\\""', '"\\\\"', '"a\\nb"', '"("', '"#"', '"\\d+"', '"["', '"é中"',
            '"dual_sim"', '"offer.video_pack"']
_DURATIONS = ["1ms", "0s", "59s", "10m", "36500d", "36501d", "99999999999999999999999d"]
_BREAKS = ["\n", "\n  ", "\n        ", "\n\t", f"  # {MARKER} ) \" ( \\ {{\n    ", f"\n# {MARKER} ]\n", " \\\n "]


def _tokens(text: str) -> list[Token]:
    """The tokens up to the end or the first character that is none (a stray backslash)."""
    return [t for t in tokenize(Source("m.kairos", text)) if t.kind not in (EOF, ERROR)]


def _insert_break(text: str, data: st.DataObject) -> str:
    """A line break, indentation or a comment at a token boundary."""
    toks = _tokens(text)
    if not toks:
        return text
    at = toks[data.draw(st.integers(0, len(toks) - 1), label="before token")].start
    return text[:at] + data.draw(st.sampled_from(_BREAKS), label="break") + text[at:]


def _break_in_parentheses(text: str, data: st.DataObject) -> str:
    """A line break (or comment) between an opening bracket and its match."""
    toks = _tokens(text)
    opens = [i for i, t in enumerate(toks) if t.kind == OP and t.text in "([{"]
    if not opens:
        return text
    i = data.draw(st.sampled_from(opens), label="open")
    depth, j = 0, i
    for j in range(i, len(toks)):
        if toks[j].kind == OP and toks[j].text in "([{":
            depth += 1
        elif toks[j].kind == OP and toks[j].text in ")]}":
            depth -= 1
            if depth == 0:
                break
    k = data.draw(st.integers(i + 1, max(i + 1, j)), label="inside at")
    at = toks[min(k, len(toks) - 1)].start
    return text[:at] + data.draw(st.sampled_from(_BREAKS), label="break") + text[at:]


def _replace(kinds: tuple[str, ...], choices: Callable[[Token], list[str]]) -> Callable[[str, st.DataObject], str]:
    def mutate(text: str, data: st.DataObject) -> str:
        toks = [t for t in _tokens(text) if t.kind in kinds and choices(t)]
        if not toks:
            return text
        t = data.draw(st.sampled_from(toks), label="token")
        new = data.draw(st.sampled_from(choices(t)), label="replacement")
        return text[:t.start] + new + text[t.end:]
    return mutate


def _family(t: Token) -> list[str]:
    return next((list(f) for f in _FAMILIES if t.text in f), [])


def _lines(op: str) -> Callable[[str, st.DataObject], str]:
    def mutate(text: str, data: st.DataObject) -> str:
        lines = text.splitlines(True)
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        return "".join(lines[:i] + ([lines[i], lines[i]] if op == "duplicate" else []) + lines[i + 1:])
    return mutate


def _tokens_edit(op: str) -> Callable[[str, st.DataObject], str]:
    def mutate(text: str, data: st.DataObject) -> str:
        toks = _tokens(text)
        if len(toks) < 2:
            return text
        i = data.draw(st.integers(0, len(toks) - 2), label="token")
        a, b = toks[i], toks[i + 1]
        if op == "delete":
            return text[:a.start] + text[a.end:]
        if op == "not":
            return text[:a.start] + "not " + text[a.start:]
        return text[:a.start] + b.text + text[a.end:b.start] + a.text + text[b.end:]  # swap
    return mutate


#: mutations, the gentle ones (which check mostly accepts) listed more than once
MUTATIONS: dict[str, Callable[[str, st.DataObject], str]] = {
    "break": _insert_break,
    "break in parentheses": _break_in_parentheses,
    "operator": _replace((OP, NAME), _family),
    "number": _replace((NUMBER,), lambda t: _NUMBERS),
    "string": _replace((STRING,), lambda t: _STRINGS),
    "duration": _replace((DURATION,), lambda t: _DURATIONS),
    "duplicate line": _lines("duplicate"),
    "drop line": _lines("drop"),
    "swap tokens": _tokens_edit("swap"),
    "delete token": _tokens_edit("delete"),
    "insert not": _tokens_edit("not"),
}
_WEIGHTED = ["break", "break in parentheses", "break in parentheses", "operator", "number", "string",
             "duration", *MUTATIONS]


def _generated_holding_the_marker() -> list[str]:
    return [name for name, entry in list(linecache.cache.items())
            if name.startswith("<kairos ") and len(entry) == 4 and MARKER in "".join(entry[2])]


def check_then_replay(name: str, text: str) -> str:
    """What `kairos check` and then `kairos replay` do with ``text``, as one word for the statistics.

    Raises whatever escapes them: the property is that nothing does.
    """
    try:
        plan = dsl.compile_sources([(f"mutated/{name}", text)], event_schema(), CHANNELS)
        check_templates(plan, [], TEMPLATES)
        build_check(plan)
    except dsl.CheckError:
        return "refused by check"
    try:
        Engine(plan, REF, sink=lambda s: None)  # replay binds first
    except BindError:
        return "passed check, refused by replay (reference data missing)"
    out = io.BytesIO()
    report = replay(lambda sink: Engine(plan, REF, sink=sink), io.BytesIO(RECORDING), out)
    assert report.malformed == 0
    assert not _generated_holding_the_marker()
    return "passed check and ran"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_mutated_catalogue_scenario_that_passes_check_also_builds_and_replays(data):
    name = data.draw(st.sampled_from(sorted(TEXTS)), label="file")
    text = TEXTS[name]
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        text = MUTATIONS[data.draw(st.sampled_from(_WEIGHTED), label="mutation")](text, data)
    note(text)
    event(check_then_replay(name, text))


def test_the_unmutated_catalogue_passes_check_and_replays():
    assert ["passed check and ran"] * len(TEXTS) == [check_then_replay(n, t) for n, t in sorted(TEXTS.items())]
