"""The syntax tree the parser builds: what was written, with its tokens for positions.

Values are kept as tokens (durations, times, names) so the checker can report
every bad one with its position instead of the parser stopping at the first.
"""

from __future__ import annotations

from typing import Any

import msgspec

from kairos.dsl._diagnostics import Source
from kairos.dsl._tokens import Token

# --- expressions


class Literal(msgspec.Struct, frozen=True):
    """A number, "string", true, false or null."""

    tok: Token
    value: Any

    @property
    def first(self) -> Token:
        return self.tok


class ListLit(msgspec.Struct, frozen=True):
    """``[e, ...]``."""

    tok: Token
    items: tuple[Node, ...]

    @property
    def first(self) -> Token:
        return self.tok


class Name(msgspec.Struct, frozen=True):
    """A bare NAME: a field, an alias, ``msisdn``."""

    tok: Token

    @property
    def first(self) -> Token:
        return self.tok


class Dotted(msgspec.Struct, frozen=True):
    """``NAME.NAME``: ``tags.x``, ``alias.field``, ``last.field``."""

    base: Token
    attr: Token

    @property
    def first(self) -> Token:
        return self.base


class Call(msgspec.Struct, frozen=True):
    """``NAME(args)``."""

    name: Token
    args: tuple[Node, ...]

    @property
    def first(self) -> Token:
        return self.name


class Unary(msgspec.Struct, frozen=True):
    """``-x`` or ``not x``."""

    op: Token
    operand: Node

    @property
    def first(self) -> Token:
        return self.op


class Binary(msgspec.Struct, frozen=True):
    """``left OP right``; ``op`` is the operator as one string (``"not in"``)."""

    op: str
    op_tok: Token
    left: Node
    right: Node

    @property
    def first(self) -> Token:
        return self.left.first


class DurationLit(msgspec.Struct, frozen=True):
    """A duration written as a value (``30d``): its milliseconds (LANGUAGE.md §9.2)."""

    tok: Token

    @property
    def first(self) -> Token:
        return self.tok


class PeriodTerm(msgspec.Struct, frozen=True):
    """``count(F) | sum(F, EXPR) | top(F, EXPR)  in  PERIOD(N)`` as one value (LANGUAGE.md §9.2)."""

    kind: Token
    filter: FilterNode
    over: TopExpr | None  # the EXPR of sum and top
    in_tok: Token
    period: Token
    n: Number

    @property
    def first(self) -> Token:
        return self.kind


class SinceTerm(msgspec.Struct, frozen=True):
    """``since(F)``: how long ago the latest event passing F was."""

    kind: Token
    filter: FilterNode

    @property
    def first(self) -> Token:
        return self.kind


Node = Literal | ListLit | Name | Dotted | Call | Unary | Binary | DurationLit | PeriodTerm | SinceTerm


class TopExpr(msgspec.Struct, frozen=True):
    """A whole expression and the tokens it spans (for its source text)."""

    node: Node
    first: Token
    last: Token


# --- values


class Duration(msgspec.Struct, frozen=True):
    """A duration as written (``10m``; ``10 m`` is kept whole to report it)."""

    tok: Token
    text: str


class Number(msgspec.Struct, frozen=True):
    """``['-'] NUMBER``: priority, a threshold, a cap."""

    tok: Token  # the first token, '-' if negative
    value: int | float


class Range(msgspec.Struct, frozen=True):
    """``HH:MM..HH:MM``."""

    start: Token
    end: Token


class Days(msgspec.Struct, frozen=True):
    """``DAY`` or ``DAY..DAY``."""

    first: Token
    last: Token | None


# --- patterns


class FilterNode(msgspec.Struct, frozen=True):
    """``TYPE [as ALIAS] [where EXPR]``."""

    type: Token
    alias: Token | None
    where: TopExpr | None


class Step(msgspec.Struct, frozen=True):
    """One step of a chain: ``[not] FILTER``, with the ``->`` before it (None for the first)."""

    arrow: Token | None
    negated: Token | None
    filter: FilterNode


class Chain(msgspec.Struct, frozen=True):
    """``STEP (-> STEP)* [within D]``: a single filter, a sequence or an absence."""

    steps: tuple[Step, ...]
    within_tok: Token | None
    within: Duration | None


class AggregateNode(msgspec.Struct, frozen=True):
    """``count(F) | sum(F, EXPR) | distinct(F, EXPR)  CMP N [within D]``."""

    kind: Token
    filter: FilterNode
    value: TopExpr | None
    cmp: Token
    threshold: Number
    within: Duration | None


class DwellNode(msgspec.Struct, frozen=True):
    """``dwell in area("A", ...) for D``."""

    kind: Token
    areas: tuple[Token, ...]
    duration: Duration


class ScheduleNode(msgspec.Struct, frozen=True):
    """``every day | week on DAY | month on day N at HH:MM [where EXPR]``; ``day`` is the DAY
    name, the N (a NUMBER or `last`), or None for `every day`."""

    kind: Token
    period: Token
    day: Token | None
    at: Token
    where: TopExpr | None


PatternNode = Chain | AggregateNode | DwellNode | ScheduleNode


# --- scenario clauses and actions


class ActionNode(msgspec.Struct, frozen=True):
    """``CHANNEL "TEMPLATE" [with {K: EXPR, ...}] [after D]``."""

    channel: Token
    template: Token
    params: tuple[tuple[Token, TopExpr], ...]
    after: Duration | None


class Assignment(msgspec.Struct, frozen=True):
    """``tags.NAME = EXPR``: one write of a ``set`` clause."""

    tags: Token
    name: Token
    eq: Token
    value: TopExpr


class Clause(msgspec.Struct, frozen=True):
    """One scenario clause: its keyword and what followed it.

    ``value`` by keyword: title Token, priority Number, audience TopExpr, when
    PatternNode, during (tuple[Range, ...], tuple[Days, ...] | None), cooldown
    Duration, once TopExpr | None, then tuple[ActionNode, ...], set tuple[Assignment, ...].
    """

    keyword: Token
    value: Any


class ScenarioNode(msgspec.Struct, frozen=True):
    """``scenario NAME CLAUSE* end``."""

    keyword: Token
    name: Token
    clauses: tuple[Clause, ...]
    end: Token
    source: Source


# --- the policy


class Exclude(msgspec.Struct, frozen=True):
    """``exclude list("a"), ...``: the list-name STRING tokens."""

    keyword: Token
    lists: tuple[Token, ...]


class CapRule(msgspec.Struct, frozen=True):
    """``cap CHANNEL N per D``."""

    keyword: Token
    channel: Token
    limit: Number
    per: Duration


class QuietRule(msgspec.Struct, frozen=True):
    """``quiet RANGE [on DAYS] for CHANNEL, ... defer|drop``."""

    keyword: Token
    range: Range
    channels: tuple[Token, ...]
    mode: Token
    days: tuple[Days, ...] | None = None


class HoursRule(msgspec.Struct, frozen=True):
    """``hours CHANNEL RANGE, ... [on DAYS]`` (extension)."""

    keyword: Token
    channel: Token
    ranges: tuple[Range, ...]
    days: tuple[Days, ...] | None


class CapacityRule(msgspec.Struct, frozen=True):
    """``capacity CHANNEL N per D`` (extension)."""

    keyword: Token
    channel: Token
    limit: Number
    per: Duration


class NoRepeatRule(msgspec.Struct, frozen=True):
    """``no_repeat after OUTCOME, ... for D`` (extension)."""

    keyword: Token
    outcomes: tuple[Token, ...]
    duration: Duration


class ExclusiveRule(msgspec.Struct, frozen=True):
    """``exclusive "GROUP": SCENARIO, ... per D`` (extension)."""

    keyword: Token
    name: Token
    scenarios: tuple[Token, ...]
    per: Duration


class ControlRule(msgspec.Struct, frozen=True):
    """``control N% [for SCENARIO, ...]`` (extension)."""

    keyword: Token
    percent: Number
    scenarios: tuple[Token, ...]


class FeedbackRule(msgspec.Struct, frozen=True):
    """``feedback within D`` (extension): how long a send can still be joined by a feedback."""

    keyword: Token
    within: Duration


class Arbitrate(msgspec.Struct, frozen=True):
    """``arbitrate D``."""

    keyword: Token
    window: Duration


Rule = (Exclude | CapRule | QuietRule | Arbitrate | HoursRule | CapacityRule | NoRepeatRule | ExclusiveRule
        | ControlRule | FeedbackRule)


class PolicyNode(msgspec.Struct, frozen=True):
    """``policy RULE* end``."""

    keyword: Token
    rules: tuple[Rule, ...]
    source: Source


class FileNode(msgspec.Struct, frozen=True):
    """A parsed file: its scenarios and policies in written order."""

    items: tuple[ScenarioNode | PolicyNode, ...]
