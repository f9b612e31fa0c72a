"""The checker: parsed files to plan structures, reporting every error it finds.

It judges what the parser only shaped: names, types, durations, times,
channels, which clause may appear where, and what each alias means in each
expression. Expressions without errors are compiled right away; a plan is only
returned by the caller when no error was found at all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from kairos import plan
from kairos.dsl import _ast as ast
from kairos.dsl import _ir as ir
from kairos.dsl._codegen import compile_expr
from kairos.dsl._diagnostics import Diagnostic, Source, did_you_mean
from kairos.dsl._expressions import ExprChecker, Scope, Uses
from kairos.dsl._parser import TOO_DEEP
from kairos.dsl._tokens import Token, string_value

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SCENARIO_NAME = re.compile(r"[a-z][a-z0-9_]*")
_DURATION = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
#: Longer durations are typos; this bound keeps every deadline and send time (ts + D) in 64 bits.
_MAX_DURATION_MS = 36_500 * _UNIT_MS["d"]
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_RESERVED = frozenset(
    ("last", "msisdn", "tags", "and", "or", "not", "in", "contains", "matches", "true", "false",
     "null", "where", "within", "as")
)
#: what an exception inside the checker is reported as
INTERNAL = "internal error of Kairos while checking this"
_Item = TypeVar("_Item", ast.ScenarioNode, ast.PolicyNode)
_Checked = TypeVar("_Checked")
_NO_LAST_IN_SCHEDULE = ("`last` does not exist in a schedule (`every …`): it completes at an instant, "
                        "not at an event")
_NO_EVENT_IN_SCHEDULE = ("a schedule (`every …`) has no event, so there are no fields or aliases here; "
                         "use msisdn, tags.NAME, list(\"NAME\"), now and the calendar expressions of "
                         "LANGUAGE.md §9.2")
_NO_LAST_IN_WHERE = "`last` is the event that completed the pattern; it is not known inside a `where`"


class Checker:
    """Checks parsed files against an event schema and a set of channels."""

    def __init__(self, schema: plan.EventSchema, channels: frozenset[str]) -> None:
        self.schema = schema
        self.channels = channels
        self.diagnostics: list[Diagnostic] = []
        self.exprs = ExprChecker(schema, self._report,
                                 lambda source, node: self._duration(node, source, zero_ok=True))
        self._scenario_refs: list[tuple[Source, Token]] = []  # scenario names the policy names

    def _report(self, source: Source, tok: Token, message: str) -> None:
        self.diagnostics.append(source.diagnostic(tok.line, tok.col, message))

    def check(self, files: list[ast.FileNode]) -> tuple[list[plan.Scenario], plan.Policy | None]:
        """Every scenario and the policy, in load order; names unique, one policy at most."""
        scenarios: list[plan.Scenario] = []
        policy: plan.Policy | None = None
        first_scenario: dict[str, ast.ScenarioNode] = {}
        first_policy: ast.PolicyNode | None = None
        for f in files:
            for item in f.items:
                if isinstance(item, ast.ScenarioNode):
                    name = item.name.text
                    seen = first_scenario.setdefault(name, item)
                    if seen is not item:
                        self._report(item.source, item.name, f"duplicate scenario '{name}'; the first is at "
                                     f"{seen.source.name}:{seen.keyword.line}")
                    checked = self._internal(item, self.scenario)
                    if checked is not None:
                        scenarios.append(checked)
                elif first_policy is None:
                    first_policy = item
                    policy = self._internal(item, self.policy)
                else:
                    self._report(item.source, item.keyword, "only one policy is allowed; the first is at "
                                 f"{first_policy.source.name}:{first_policy.keyword.line}")
                    self._internal(item, self.policy)
        for source, tok in self._scenario_refs:
            if tok.text not in first_scenario:
                self._unknown(source, tok, "scenario", sorted(first_scenario))
        return scenarios, policy

    def _internal(self, node: _Item, check: Callable[[_Item], _Checked]) -> _Checked | None:
        """``check(node)``; an exception in it (a bug of the checker, never the author's) becomes
        an error at the scenario's or policy's keyword, so no caller ever sees a traceback."""
        try:
            return check(node)
        except Exception as e:
            self._report(node.source, node.keyword, f"{INTERNAL} ({type(e).__name__}: {e}); please "
                         "report it with this file")
            return None

    # --- scenarios

    def scenario(self, node: ast.ScenarioNode) -> plan.Scenario:
        """One scenario; parts that had an error are left None (the plan is then discarded)."""
        source = node.source
        name = node.name.text
        if not _SCENARIO_NAME.fullmatch(name):
            self._report(source, node.name, f"bad scenario name '{name}': use lower-case letters, digits "
                         "and _, starting with a letter")
        clauses: dict[str, ast.Clause] = {}
        for clause in node.clauses:
            kw = clause.keyword.text
            if kw in clauses:
                self._report(source, clause.keyword,
                             f"duplicate `{kw}` clause; the first is at line {clauses[kw].keyword.line}")
            else:
                clauses[kw] = clause
        if "when" not in clauses:
            self._report(source, node.keyword, f"scenario '{name}' has no `when` clause")
        if "then" not in clauses and "set" not in clauses:
            self._report(source, node.keyword, f"scenario '{name}' has no `then` clause (nor a `set` clause: a "
                         "scenario sends, writes tags, or both)")
        uses = Uses()
        pattern: plan.Pattern | None = None
        done: Scope | None = None  # the completion context; None without a `when`
        if "when" in clauses:
            pattern, done = self._pattern(clauses["when"].value, source, uses)
        value = {kw: c.value for kw, c in clauses.items()}
        audience = once_per = None
        if done is not None and "audience" in value:
            audience = self._condition(value["audience"], done, "`audience`", "audience")
        if done is not None and value.get("once") is not None:
            once_per = self._value(value["once"], done, "once_per")
        once = "never" if "once" not in value else "once" if value["once"] is None else "per"
        sets = self._sets(value.get("set", ()), done, source)
        text = source.text[node.keyword.start : node.end.end]
        return plan.Scenario(
            name=name,
            pattern=pattern,  # type: ignore[arg-type]  # None only when an error was reported
            actions=tuple(self._action(a, done, source) for a in value.get("then", ())),
            origin=_origin(source, node.keyword),
            title=string_value(value["title"]) if "title" in value else "",
            priority=self._priority(value["priority"], source) if "priority" in value else 50,
            audience=audience,
            during=self._during(value["during"], source) if "during" in value else None,
            cooldown_ms=self._duration(value["cooldown"], source) if "cooldown" in value else None,
            once=once,  # type: ignore[arg-type]  # one of the three literals, seen as str
            once_per=once_per,
            version=hashlib.sha256(text.encode()).hexdigest()[:16],
            lists=frozenset(uses.lists),
            areas=frozenset(uses.areas),
            tracked=frozenset(uses.tracked),
            sets=sets,
            terms=tuple(uses.terms.values()),
            uses_now=uses.now,
            names=tuple(dict.fromkeys(uses.names)),
        )

    def _sets(self, assignments: tuple[ast.Assignment, ...], done: Scope | None,
              source: Source) -> tuple[plan.TagSet, ...]:
        """``set tags.NAME = EXPR, …``: each EXPR in the completion's scope (as a `with` value)."""
        out: list[plan.TagSet] = []
        seen: dict[str, ast.Assignment] = {}
        for assignment in assignments:
            name = assignment.name.text
            first = seen.setdefault(name, assignment)
            if first is not assignment:
                self._report(source, assignment.name, f"tags.{name} is set twice in this `set` clause; the first "
                             f"is at line {first.name.line}")
                continue
            if done is None:
                continue
            value = self._value(assignment.value, done, f"set_{name}")
            if value is not None:
                out.append(plan.TagSet(name, value, _origin(source, assignment.tags)))
        return tuple(out)

    def _priority(self, number: ast.Number, source: Source) -> int:
        value = number.value
        if isinstance(value, float) or not 0 <= value <= 100:
            self._report(source, number.tok, f"priority must be a whole number from 0 to 100, got {value}")
            return 50
        return value

    def _action(self, node: ast.ActionNode, done: Scope | None, source: Source) -> plan.Action:
        channel = node.channel.text
        if channel not in self.channels:
            self._unknown(source, node.channel, "channel", sorted(self.channels))
        params: list[tuple[str, plan.Expr | None]] = []
        seen: set[str] = set()
        for key, top in node.params:
            if key.text in seen:
                self._report(source, key, f"duplicate parameter '{key.text}'")
                continue
            seen.add(key.text)
            params.append((key.text, self._value(top, done, f"param_{key.text}") if done else None))
        return plan.Action(
            channel=channel,
            template=string_value(node.template),
            params=tuple(params),  # type: ignore[arg-type]  # None only after a reported error
            after_ms=(self._duration(node.after, source, zero_ok=True) or 0) if node.after else 0,
            origin=_origin(source, node.channel),
        )

    # --- patterns

    def _pattern(self, node: ast.PatternNode, source: Source, uses: Uses) -> tuple[plan.Pattern | None, Scope]:
        """The compiled pattern (None if it is malformed) and the scope of its completion."""
        if isinstance(node, ast.DwellNode):
            areas = tuple(string_value(t) for t in node.areas)
            uses.areas.update(areas)
            for tok in node.areas:
                uses.name("area", string_value(tok), source, tok)
            done = Scope(source, uses, pattern_types=("location",),
                         no_last="`last` is not defined for dwell: it completes at a deadline, not at an event")
            return plan.Dwell(areas, self._duration(node.duration, source)), done  # type: ignore[arg-type]  # see params
        if isinstance(node, ast.AggregateNode):
            return self._aggregate(node, source, uses)
        if isinstance(node, ast.ScheduleNode):
            return self._schedule(node, source, uses)
        return self._chain(node, source, uses)

    def _schedule(self, node: ast.ScheduleNode, source: Source, uses: Uses) -> tuple[plan.Pattern | None, Scope]:
        """``every …`` (LANGUAGE.md §9.1): no event, so its where, audience and actions read only
        the subscriber; the instant is checked here, the rest of the scenario as for any pattern."""
        period = node.period.text
        day: int | None = 0
        if period == "week":
            day = self._day(node.day, source)  # type: ignore[arg-type]  # the parser gives week a day
        elif period == "month":
            tok = node.day
            assert tok is not None  # the parser gives month a day
            if tok.text == "last":
                day = plan.LAST_DAY
            elif tok.text.isdigit() and 1 <= int(tok.text) <= 28:
                day = int(tok.text)
            else:
                self._report(source, tok, f"bad day of the month '{tok.text}': write 1 to 28, or `last` "
                             "(not every month has a 29th, 30th or 31st)")
                day = None
        minute = None
        m = _TIME.fullmatch(node.at.text)
        if m and int(m[1]) < 24 and int(m[2]) < 60:
            minute = int(m[1]) * 60 + int(m[2])
            if len(m[1]) != 2:  # §9.1 writes `at HH:MM`; 4:00 reads too easily as 14:00 or 04:00
                self._report(source, node.at, f"bad time '{node.at.text}': write {m[1]:0>2}:{m[2]}")
                minute = None
        else:
            self._report(source, node.at, f"bad time '{node.at.text}': write HH:MM from 00:00 to 23:59")
        done = Scope(source, uses, no_last=_NO_LAST_IN_SCHEDULE, no_event=_NO_EVENT_IN_SCHEDULE)
        where = None if node.where is None else self._condition(node.where, done, "a `where`", "where")
        if day is None or minute is None:
            return None, done
        return plan.Schedule(period, day, minute, where), done  # type: ignore[arg-type]  # one of the three

    def _chain(self, node: ast.Chain, source: Source, uses: Uses) -> tuple[plan.Pattern | None, Scope]:
        steps = node.steps
        filters = [s.filter for s in steps]
        types = [self._event_type(f.type, source) for f in filters]
        aliases = self._aliases(filters, source)
        checked = [self._filter(f, i, types, aliases, source, uses) for i, f in enumerate(filters)]
        within = self._duration(node.within, source) if node.within else None
        done = Scope(source, uses, pattern_types=tuple(t for t in types if t))
        for i, (step, alias) in enumerate(zip(steps, aliases, strict=True)):
            if alias is not None and step.negated:
                done.hidden[alias] = f"'{alias}' names the event that did not happen"
            elif alias is not None:
                done.aliases[alias] = (i, types[i])
        done.last = types[-1]
        pattern: plan.Pattern | None = None
        if any(s.negated for s in steps):
            done.no_last = ("`last` is not defined for `A -> not B`: it completes at a deadline, when "
                            "nothing happened; use the first step's alias")
            malformed = False
            for step in steps[:-1]:
                if step.negated:
                    self._report(source, step.negated, "`not` can only be the last step: write `A -> not B within D`")
                    malformed = True
            last = steps[-1].negated
            if last and len(steps) != 2:
                self._report(source, last, "`not` follows exactly one step: write `A -> not B within D`")
            elif last and node.within is None:
                self._report(source, last, "`A -> not B` needs a time limit: write `A -> not B within D`")
            elif last and not malformed:
                pattern = plan.Absence(checked[0], checked[1], within)  # type: ignore[arg-type]  # None only after an error
        elif len(steps) == 1:
            if node.within_tok:
                self._report(source, node.within_tok,
                             "`within` applies to a sequence `A -> B within D` or an aggregate")
            pattern = plan.Single(checked[0])
        else:
            if node.within is None:
                self._report(source, steps[1].arrow,  # type: ignore[arg-type]  # a second step has an arrow
                             "a sequence needs a time limit: write `A -> B within D`")
            pattern = plan.Sequence(tuple(checked), within)  # type: ignore[arg-type]  # None only after an error
        return pattern, done

    def _aggregate(self, node: ast.AggregateNode, source: Source, uses: Uses) -> tuple[plan.Pattern, Scope]:
        kind = node.kind.text
        event_type = self._event_type(node.filter.type, source)
        (alias,) = self._aliases([node.filter], source)
        flt = self._filter(node.filter, 0, [event_type], [alias], source, uses)
        value = None
        if node.value is not None and event_type is not None:
            scope = Scope(source, uses, bare=event_type, no_last=_NO_LAST_IN_WHERE)
            if alias is not None:
                scope.aliases[alias] = (None, event_type)
            before = len(self.diagnostics)
            try:
                checked = self.exprs.value(node.value, scope)
            except RecursionError:
                checked = ir.POISON
                self._too_deep(node.value, source)
            if kind == "sum" and checked.type.kind not in ("num", "any", "null"):
                self._report(source, node.value.first, f"sum() adds numbers; got {checked.type.describe()}")
            value = self._compile(checked, node.value, source, "value", False, before)
        if kind in ("count", "sum") and node.cmp.text in ("<", "<="):
            self._report(source, node.cmp, f"`{kind}(...) {node.cmp.text} N within D` completes at each event "
                         f"passing the filter, so it fires at the first ones (the event counts itself): it "
                         f"cannot see that too few came. For \"fewer than N\" test the calendar at a time: "
                         f"`when every day at 10:00 where {kind}(...) in month(0) {node.cmp.text} N` "
                         f"(LANGUAGE.md §9), or `A -> not B within D`")
        within = None
        if node.within is None:
            self._report(source, node.kind, f"`{kind}(...)` needs a window: write "
                         f"`{kind}(...) {node.cmp.text} N within D`")
        else:
            within = self._duration(node.within, source)
        done = Scope(source, uses, last=event_type, pattern_types=(event_type,) if event_type else ())
        if alias is not None:
            done.aliases[alias] = (0, event_type)
        return plan.Aggregate(
            kind, flt, value, node.cmp.text, float(node.threshold.value), within  # type: ignore[arg-type]  # None only after an error
        ), done

    def _event_type(self, tok: Token, source: Source) -> str | None:
        if tok.text in self.schema.types:
            return tok.text
        self._unknown(source, tok, "event type", sorted(self.schema.types))
        return None

    def _aliases(self, filters: list[ast.FilterNode], source: Source) -> list[str | None]:
        """Each filter's alias, None where it has none or it is refused."""
        out: list[str | None] = []
        for f in filters:
            alias = None if f.alias is None else f.alias.text
            if alias in _RESERVED:
                self._report(source, f.alias, f"'{alias}' cannot be an alias: it is reserved")  # type: ignore[arg-type]  # alias set: f.alias is a Token
                alias = None
            elif alias is not None and alias in out:
                self._report(source, f.alias, f"alias '{alias}' is already bound by an earlier step")  # type: ignore[arg-type]  # as above
                alias = None
            out.append(alias)
        return out

    def _filter(
        self, node: ast.FilterNode, i: int, types: list[str | None], aliases: list[str | None],
        source: Source, uses: Uses,
    ) -> plan.Filter:
        """Step ``i``'s filter: its where sees its own alias as ``e``, earlier ones as ``a[j]``."""
        event_type = types[i]
        where, reads = None, False
        if node.where is not None and event_type is not None:
            scope = Scope(source, uses, bare=event_type, in_filter=True, no_last=_NO_LAST_IN_WHERE,
                          pattern_types=tuple(t for t in types if t))
            for j, alias in enumerate(aliases):
                if alias is None:
                    continue
                if j < i:
                    scope.aliases[alias] = (j, types[j])
                elif j == i:
                    scope.aliases[alias] = (None, event_type)
                else:
                    scope.hidden[alias] = f"alias '{alias}' is bound only by a later step"
            where = self._condition(node.where, scope, "a `where`", "where")
            reads = scope.reads_earlier
        return plan.Filter(
            event_type=node.type.text,
            alias=None if node.alias is None else node.alias.text,
            where=where,
            reads_aliases=reads,
            origin=_origin(source, node.type),
        )

    # --- expressions

    def _condition(self, top: ast.TopExpr, scope: Scope, what: str, name: str) -> plan.Expr | None:
        before = len(self.diagnostics)
        try:
            node = self.exprs.condition(top, scope, what)
        except RecursionError:
            self._too_deep(top, scope.source)
            return None
        return self._compile(node, top, scope.source, name, True, before)

    def _value(self, top: ast.TopExpr, scope: Scope, name: str) -> plan.Expr | None:
        before = len(self.diagnostics)
        try:
            node = self.exprs.value(top, scope)
        except RecursionError:
            self._too_deep(top, scope.source)
            return None
        return self._compile(node, top, scope.source, name, False, before)

    def _compile(
        self, node: ir.Ir, top: ast.TopExpr, source: Source, name: str, condition: bool, before: int
    ) -> plan.Expr | None:
        """Compile an expression unless checking it reported an error."""
        if len(self.diagnostics) > before:
            return None
        try:
            return compile_expr(node, condition=condition, name=name, source=source, first=top.first,
                                last=top.last)
        except RecursionError:
            self._too_deep(top, source)
            return None
        except SyntaxError as e:  # Python's own limit on nesting in the generated code
            if "too many nested" not in str(e):
                raise
            self._too_deep(top, source)
            return None

    def _too_deep(self, top: ast.TopExpr, source: Source) -> None:
        self._report(source, top.first, TOO_DEEP)

    # --- values

    def _duration(self, node: ast.Duration, source: Source, zero_ok: bool = False) -> int | None:
        m = _DURATION.fullmatch(node.text)
        if m is None:
            self._report(source, node.tok, f"bad duration '{node.text}': write a whole number followed by "
                         "ms, s, m, h or d")
            return None
        ms = int(m[1]) * _UNIT_MS[m[2]] if len(m[1]) <= 20 else _MAX_DURATION_MS + 1  # no int of 5000 digits
        if ms > _MAX_DURATION_MS:
            self._report(source, node.tok, f"bad duration '{node.text}': at most 36500d (100 years); "
                         "for \"never again\" use `once`")
            return None
        if ms == 0 and not zero_ok:
            self._report(source, node.tok, f"bad duration '{node.text}': write a whole number above zero "
                         "followed by ms, s, m, h or d")
            return None
        return ms

    def _range(self, node: ast.Range, source: Source) -> plan.TimeRange | None:
        start, end = self._minute(node.start, source, False), self._minute(node.end, source, True)
        if start is None or end is None:
            return None
        if start == end:
            self._report(source, node.start, f"empty time range {node.start.text}..{node.end.text}: the start "
                         "and the end must differ (00:00..24:00 is the whole day)")
            return None
        return plan.TimeRange(start, end)

    def _minute(self, tok: Token, source: Source, is_end: bool) -> int | None:
        m = _TIME.fullmatch(tok.text)
        if m:
            hour, minute = int(m[1]), int(m[2])
            if minute < 60 and (hour < 24 or (is_end and hour == 24 and minute == 0)):
                return hour * 60 + minute
        self._report(source, tok, f"bad time '{tok.text}': write HH:MM from 00:00 to 23:59, or 24:00 "
                     "to end a range")
        return None

    def _during(
        self, during: tuple[tuple[ast.Range, ...], tuple[ast.Days, ...] | None], source: Source
    ) -> plan.During:
        ranges, days = during
        checked = tuple(self._range(r, source) for r in ranges)
        return plan.During(checked, None if days is None else self._days(days, source))  # type: ignore[arg-type]  # None only after an error

    def _days(self, items: tuple[ast.Days, ...], source: Source) -> frozenset[int]:
        out: set[int] = set()
        for item in items:
            first = self._day(item.first, source)
            last = first if item.last is None else self._day(item.last, source)
            if first is None or last is None:
                continue
            day = first
            out.add(day)
            while day != last:
                day = day % 7 + 1
                out.add(day)
        return frozenset(out)

    def _day(self, tok: Token, source: Source) -> int | None:
        if tok.text in DAYS:
            return DAYS.index(tok.text) + 1
        self._unknown(source, tok, "weekday", DAYS)
        return None

    def _unknown(self, source: Source, tok: Token, what: str, names: Sequence[str]) -> None:
        hint = did_you_mean(tok.text, names) or f" ({', '.join(names)})"
        self._report(source, tok, f"unknown {what} '{tok.text}'{hint}")

    # --- the policy

    def policy(self, node: ast.PolicyNode) -> plan.Policy:
        """The contact policy (LANGUAGE.md §6); rules accumulate, `arbitrate` is given once."""
        source = node.source
        exclude: list[str] = []
        excluded: list[plan.NameUse] = []
        caps: list[plan.Cap] = []
        quiet: list[plan.Quiet] = []
        arbitrate: ast.Arbitrate | None = None
        arbitrate_ms = None
        ext = _Extensions()
        for rule in node.rules:
            if self._extension(rule, source, ext):
                continue
            match rule:
                case ast.Exclude(lists=lists):
                    exclude.extend(string_value(t) for t in lists)
                    excluded.extend(plan.NameUse("list", string_value(t), _origin(source, t)) for t in lists)
                case ast.CapRule(channel=channel, limit=limit, per=per):
                    self._channel(channel, source, allow_any=True)
                    if isinstance(limit.value, float) or limit.value < 0:
                        self._report(source, limit.tok, f"cap needs a whole number of sends, got {limit.value}")
                    caps.append(plan.Cap(channel.text, int(limit.value), self._duration(per, source)))  # type: ignore[arg-type]  # None only after an error
                case ast.QuietRule(range=rng, channels=channels, mode=mode, days=days):
                    for channel in channels:
                        self._channel(channel, source, allow_any=False)
                    quiet.append(plan.Quiet(self._range(rng, source), tuple(c.text for c in channels),  # type: ignore[arg-type]  # None only after an error
                                            mode.text,  # type: ignore[arg-type]  # the parser lets only defer or drop through
                                            None if days is None else self._days(days, source)))
                case ast.Arbitrate(keyword=kw, window=window):
                    if arbitrate is not None:
                        self._report(source, kw, "duplicate `arbitrate` rule; the first is at line "
                                     f"{arbitrate.keyword.line}")
                    else:
                        arbitrate = rule
                        arbitrate_ms = self._duration(window, source)
        return plan.Policy(_origin(source, node.keyword), tuple(exclude), tuple(caps), tuple(quiet), arbitrate_ms,
                           tuple(ext.hours), tuple(ext.capacity), ext.no_repeat, tuple(ext.exclusive),
                           tuple(ext.control), ext.feedback_ms, tuple(excluded))

    def _extension(self, rule: ast.Rule, source: Source, ext: _Extensions) -> bool:
        """The policy rules beyond LANGUAGE.md §6; False for a §6 rule."""
        match rule:
            case ast.HoursRule(keyword=kw, channel=channel, ranges=ranges, days=days):
                self._channel(channel, source, allow_any=False)
                ext.hours.append(plan.Hours(channel.text, tuple(self._range(r, source) for r in ranges),  # type: ignore[misc]  # None only after an error
                                            None if days is None else self._days(days, source)))
            case ast.CapacityRule(channel=channel, limit=limit, per=per):
                self._channel(channel, source, allow_any=False)
                if isinstance(limit.value, float) or limit.value < 0:
                    self._report(source, limit.tok, f"capacity needs a whole number of sends, got {limit.value}")
                ms = self._duration(per, source)
                if ms is not None and ms % 86_400_000:
                    self._report(source, per.tok, f"capacity counts calendar days: write the period in whole "
                                 f"days, e.g. `per 1d`, got '{per.text}'")
                period_days = (ms or 86_400_000) // 86_400_000 or 1
                ext.capacity.append(plan.Capacity(channel.text, int(limit.value), period_days))
            case ast.NoRepeatRule(keyword=kw, outcomes=outcomes, duration=duration):
                if ext.no_repeat_line is not None:
                    self._report(source, kw, f"duplicate `no_repeat` rule; the first is at line {ext.no_repeat_line}")
                ext.no_repeat_line = kw.line
                for tok in outcomes:
                    if tok.text not in OUTCOMES:
                        self._unknown(source, tok, "outcome", OUTCOMES)
                ms = self._duration(duration, source)
                ext.no_repeat = plan.NoRepeat(tuple(t.text for t in outcomes), ms or 0)
            case ast.ExclusiveRule(name=name, scenarios=scenarios, per=per):
                if len(scenarios) < 2:
                    self._report(source, name, "an exclusion group needs at least two scenarios")
                self._scenario_refs.extend((source, t) for t in scenarios)
                ext.exclusive.append(plan.Exclusive(string_value(name), tuple(t.text for t in scenarios),
                                                    self._duration(per, source) or 0))
            case ast.ControlRule(keyword=kw, percent=percent, scenarios=scenarios):
                if not 0 <= percent.value <= 100:
                    self._report(source, percent.tok, f"a control share is from 0% to 100%, got {percent.value}%")
                if not scenarios:
                    if ext.control_line is not None:
                        self._report(source, kw, "duplicate global `control` rule; the first is at line "
                                     f"{ext.control_line}")
                    ext.control_line = kw.line
                self._scenario_refs.extend((source, t) for t in scenarios)
                ext.control.append(plan.Control(float(percent.value), tuple(t.text for t in scenarios)))
            case ast.FeedbackRule(keyword=kw, within=within):
                if ext.feedback_line is not None:
                    self._report(source, kw, f"duplicate `feedback` rule; the first is at line {ext.feedback_line}")
                ext.feedback_line = kw.line
                ext.feedback_ms = self._duration(within, source)
            case _:
                return False
        return True

    def _channel(self, tok: Token, source: Source, allow_any: bool) -> None:
        known = self.channels | {"any"} if allow_any else self.channels
        if tok.text not in known:
            self._unknown(source, tok, "channel", sorted(known))


OUTCOMES = ("accepted", "rejected", "clicked", "delivered", "failed")


class _Extensions:
    """The extension rules of one policy while it is checked."""

    def __init__(self) -> None:
        self.hours: list[plan.Hours] = []
        self.capacity: list[plan.Capacity] = []
        self.no_repeat: plan.NoRepeat | None = None
        self.no_repeat_line: int | None = None
        self.exclusive: list[plan.Exclusive] = []
        self.control: list[plan.Control] = []
        self.control_line: int | None = None
        self.feedback_ms: int | None = None
        self.feedback_line: int | None = None


def _origin(source: Source, tok: Token) -> plan.Origin:
    return plan.Origin(source.name, tok.line, tok.col)
