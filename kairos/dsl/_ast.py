"""The syntax tree the parser builds: what was written, with its tokens for positions.

Values are kept as tokens (durations, times, names) so the checker can report
every bad one with its position instead of the parser stopping at the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kairos.dsl._diagnostics import Source
from kairos.dsl._tokens import Token

# --- expressions


@dataclass(frozen=True, slots=True)
class Literal:
    """A number, "string", true, false or null."""

    tok: Token
    value: Any

    @property
    def first(self) -> Token:
        return self.tok


@dataclass(frozen=True, slots=True)
class ListLit:
    """``[e, ...]``."""

    tok: Token
    items: tuple[Node, ...]

    @property
    def first(self) -> Token:
        return self.tok


@dataclass(frozen=True, slots=True)
class Name:
    """A bare NAME: a field, an alias, ``msisdn``."""

    tok: Token

    @property
    def first(self) -> Token:
        return self.tok


@dataclass(frozen=True, slots=True)
class Dotted:
    """``NAME.NAME``: ``tags.x``, ``alias.field``, ``last.field``."""

    base: Token
    attr: Token

    @property
    def first(self) -> Token:
        return self.base


@dataclass(frozen=True, slots=True)
class Call:
    """``NAME(args)``."""

    name: Token
    args: tuple[Node, ...]

    @property
    def first(self) -> Token:
        return self.name


@dataclass(frozen=True, slots=True)
class Unary:
    """``-x`` or ``not x``."""

    op: Token
    operand: Node

    @property
    def first(self) -> Token:
        return self.op


@dataclass(frozen=True, slots=True)
class Binary:
    """``left OP right``; ``op`` is the operator as one string (``"not in"``)."""

    op: str
    op_tok: Token
    left: Node
    right: Node

    @property
    def first(self) -> Token:
        return self.left.first


@dataclass(frozen=True, slots=True)
class DurationLit:
    """A duration written as a value (``30d``): its milliseconds (LANGUAGE.md §9.2)."""

    tok: Token

    @property
    def first(self) -> Token:
        return self.tok


@dataclass(frozen=True, slots=True)
class PeriodTerm:
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


@dataclass(frozen=True, slots=True)
class SinceTerm:
    """``since(F)``: how long ago the latest event passing F was."""

    kind: Token
    filter: FilterNode

    @property
    def first(self) -> Token:
        return self.kind


Node = Literal | ListLit | Name | Dotted | Call | Unary | Binary | DurationLit | PeriodTerm | SinceTerm


@dataclass(frozen=True, slots=True)
class TopExpr:
    """A whole expression and the tokens it spans (for its source text)."""

    node: Node
    first: Token
    last: Token


# --- values


@dataclass(frozen=True, slots=True)
class Duration:
    """A duration as written (``10m``; ``10 m`` is kept whole to report it)."""

    tok: Token
    text: str


@dataclass(frozen=True, slots=True)
class Number:
    """``['-'] NUMBER``: priority, a threshold, a cap."""

    tok: Token  # the first token, '-' if negative
    value: int | float


@dataclass(frozen=True, slots=True)
class Range:
    """``HH:MM..HH:MM``."""

    start: Token
    end: Token


@dataclass(frozen=True, slots=True)
class Days:
    """``DAY`` or ``DAY..DAY``."""

    first: Token
    last: Token | None


# --- patterns


@dataclass(frozen=True, slots=True)
class FilterNode:
    """``TYPE [as ALIAS] [where EXPR]``."""

    type: Token
    alias: Token | None
    where: TopExpr | None


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a chain: ``[not] FILTER``, with the ``->`` before it (None for the first)."""

    arrow: Token | None
    negated: Token | None
    filter: FilterNode


@dataclass(frozen=True, slots=True)
class Chain:
    """``STEP (-> STEP)* [within D]``: a single filter, a sequence or an absence."""

    steps: tuple[Step, ...]
    within_tok: Token | None
    within: Duration | None


@dataclass(frozen=True, slots=True)
class AggregateNode:
    """``count(F) | sum(F, EXPR) | distinct(F, EXPR)  CMP N [within D]``."""

    kind: Token
    filter: FilterNode
    value: TopExpr | None
    cmp: Token
    threshold: Number
    within: Duration | None


@dataclass(frozen=True, slots=True)
class DwellNode:
    """``dwell in area("A", ...) for D``."""

    kind: Token
    areas: tuple[Token, ...]
    duration: Duration


@dataclass(frozen=True, slots=True)
class ScheduleNode:
    """``every day | week on DAY | month on day N at HH:MM [where EXPR]``; ``day`` is the DAY
    name, the N (a NUMBER or `last`), or None for `every day`."""

    kind: Token
    period: Token
    day: Token | None
    at: Token
    where: TopExpr | None


PatternNode = Chain | AggregateNode | DwellNode | ScheduleNode


# --- scenario clauses and actions


@dataclass(frozen=True, slots=True)
class ActionNode:
    """``CHANNEL "TEMPLATE" [with {K: EXPR, ...}] [after D]``."""

    channel: Token
    template: Token
    params: tuple[tuple[Token, TopExpr], ...]
    after: Duration | None


@dataclass(frozen=True, slots=True)
class Assignment:
    """``tags.NAME = EXPR``: one write of a ``set`` clause."""

    tags: Token
    name: Token
    eq: Token
    value: TopExpr


@dataclass(frozen=True, slots=True)
class Clause:
    """One scenario clause: its keyword and what followed it.

    ``value`` by keyword: title Token, priority Number, audience TopExpr, when
    PatternNode, during (tuple[Range, ...], tuple[Days, ...] | None), cooldown
    Duration, once TopExpr | None, then tuple[ActionNode, ...], set tuple[Assignment, ...].
    """

    keyword: Token
    value: Any


@dataclass(frozen=True, slots=True)
class ScenarioNode:
    """``scenario NAME CLAUSE* end``."""

    keyword: Token
    name: Token
    clauses: tuple[Clause, ...]
    end: Token
    source: Source


# --- the policy


@dataclass(frozen=True, slots=True)
class Exclude:
    """``exclude list("a"), ...``: the list-name STRING tokens."""

    keyword: Token
    lists: tuple[Token, ...]


@dataclass(frozen=True, slots=True)
class CapRule:
    """``cap CHANNEL N per D``."""

    keyword: Token
    channel: Token
    limit: Number
    per: Duration


@dataclass(frozen=True, slots=True)
class QuietRule:
    """``quiet RANGE [on DAYS] for CHANNEL, ... defer|drop``."""

    keyword: Token
    range: Range
    channels: tuple[Token, ...]
    mode: Token
    days: tuple[Days, ...] | None = None


@dataclass(frozen=True, slots=True)
class HoursRule:
    """``hours CHANNEL RANGE, ... [on DAYS]`` (extension)."""

    keyword: Token
    channel: Token
    ranges: tuple[Range, ...]
    days: tuple[Days, ...] | None


@dataclass(frozen=True, slots=True)
class CapacityRule:
    """``capacity CHANNEL N per D`` (extension)."""

    keyword: Token
    channel: Token
    limit: Number
    per: Duration


@dataclass(frozen=True, slots=True)
class NoRepeatRule:
    """``no_repeat after OUTCOME, ... for D`` (extension)."""

    keyword: Token
    outcomes: tuple[Token, ...]
    duration: Duration


@dataclass(frozen=True, slots=True)
class ExclusiveRule:
    """``exclusive "GROUP": SCENARIO, ... per D`` (extension)."""

    keyword: Token
    name: Token
    scenarios: tuple[Token, ...]
    per: Duration


@dataclass(frozen=True, slots=True)
class ControlRule:
    """``control N% [for SCENARIO, ...]`` (extension)."""

    keyword: Token
    percent: Number
    scenarios: tuple[Token, ...]


@dataclass(frozen=True, slots=True)
class FeedbackRule:
    """``feedback within D`` (extension): how long a send can still be joined by a feedback."""

    keyword: Token
    within: Duration


@dataclass(frozen=True, slots=True)
class Arbitrate:
    """``arbitrate D``."""

    keyword: Token
    window: Duration


Rule = (Exclude | CapRule | QuietRule | Arbitrate | HoursRule | CapacityRule | NoRepeatRule | ExclusiveRule
        | ControlRule | FeedbackRule)


@dataclass(frozen=True, slots=True)
class PolicyNode:
    """``policy RULE* end``."""

    keyword: Token
    rules: tuple[Rule, ...]
    source: Source


@dataclass(frozen=True, slots=True)
class FileNode:
    """A parsed file: its scenarios and policies in written order."""

    items: tuple[ScenarioNode | PolicyNode, ...]
