"""A hand-written recursive-descent parser: tokens to the syntax tree of ``_ast``.

Each ``_parse_*`` method starts with the grammar rule it implements. The parser
checks only the shape of the text and stops at the first error in a file;
values (durations, times, names, types) are judged by the checker, which
reports all of them.
"""

from __future__ import annotations

from typing import NoReturn

from kairos.dsl import _ast as ast
from kairos.dsl._diagnostics import ParseError, Source, did_you_mean
from kairos.dsl._tokens import (
    DURATION, EOF, ERROR, NAME, NUMBER, OP, STRING, TIME, Token, error_message, string_value, tokenize,
)

CLAUSES = ("title", "priority", "audience", "when", "during", "cooldown", "once", "then", "set")
POLICY_RULES = ("exclude", "cap", "quiet", "arbitrate", "hours", "capacity", "no_repeat", "exclusive", "control",
                "feedback")
AGGREGATES = ("count", "sum", "distinct")
#: the calendar and recency aggregates of LANGUAGE.md §9.2, values in an expression
TERMS = ("count", "sum", "top", "since")
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
UNITS = ("ms", "s", "m", "h", "d")
_MEMBERSHIP = ("in", "contains", "matches")
#: the longest number literal: any longer is no value a scenario can mean (300 digits keep a float finite)
MAX_DIGITS = 300
#: Words that, first on a line, start the next clause or rule (or close the block):
#: never a name or a value there, so a forgotten value is reported where it is missing.
_LINE_STARTERS = frozenset(CLAUSES + POLICY_RULES + ("end",))


#: Why an expression is refused when it nests (or chains) deeper than Python can follow.
TOO_DEEP = ("this expression is nested too deeply (or chains too many `and`/`or`) to compile; "
            "write many alternatives as `x in [...]`, or split the scenario")


def parse(source: Source) -> ast.FileNode:
    """Parse one file; raises ParseError at the first syntax error."""
    parser = _Parser(source)
    try:
        return parser.parse_file()
    except RecursionError:  # reported at the start of the expression, the same on any stack
        tok = parser.expr_start or parser.tokens[min(parser.i, len(parser.tokens) - 1)]
        raise ParseError(source.diagnostic(tok.line, tok.col, TOO_DEEP)) from None


def _describe(tok: Token) -> str:
    return "end of file" if tok.kind == EOF else repr(tok.text) if tok.kind != STRING else tok.text


class _Parser:
    __slots__ = ("source", "tokens", "i", "expr_start")

    def __init__(self, source: Source) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.i = 0
        self.expr_start: Token | None = None  # the first token of the top-level expression being parsed

    # --- token helpers

    def peek(self, ahead: int = 0) -> Token:
        tok = self.tokens[min(self.i + ahead, len(self.tokens) - 1)]
        if tok.kind == ERROR or (tok.kind == OP and tok.text == "="):  # '=' only ever follows `set tags.NAME`
            self.fail(tok, error_message(tok))
        return tok

    def take(self) -> Token:
        tok = self.peek()
        if tok.kind != EOF:
            self.i += 1
        return tok

    @property
    def prev(self) -> Token:
        return self.tokens[self.i - 1]

    def at(self, text: str, ahead: int = 0) -> bool:
        """The token is the keyword or operator ``text``."""
        tok = self.peek(ahead)
        return tok.text == text and tok.kind in (NAME, OP)

    def accept(self, text: str) -> Token | None:
        return self.take() if self.at(text) else None

    def expect(self, text: str, what: str | None = None) -> Token:
        if self.at(text):
            return self.take()
        self.missing(what or repr(text))
        self.fail(self.peek(), f"expected {what or repr(text)}, got {_describe(self.peek())}")

    def expect_kind(self, kind: str, what: str) -> Token:
        if self.peek().kind == kind:
            return self.take()
        self.missing(what)
        self.fail(self.peek(), f"expected {what}, got {_describe(self.peek())}")

    def expect_name(self, what: str) -> Token:
        """A NAME token, unless it is a clause keyword that starts the next line (see ``missing``)."""
        self.missing(what)
        return self.expect_kind(NAME, what)

    def missing(self, what: str) -> None:
        """Fail if the next token is a keyword starting the next line: ``what`` was left out.

        ``once per`` followed by the `then` line would otherwise read `then` as a
        value and report the token after it, a line too late and about the wrong thing.
        """
        tok = self.peek()
        if tok.kind != NAME or tok.text not in _LINE_STARTERS or self.i == 0:
            return
        prev = self.tokens[self.i - 1]
        if prev.line == tok.line:
            return
        col = prev.col + len(prev.text)
        raise ParseError(self.source.diagnostic(
            prev.line, col,
            f"expected {what} after '{prev.text}', but the line ends here "
            f"(line {tok.line} starts with `{tok.text}`)",
        ))

    def fail(self, tok: Token, message: str) -> NoReturn:
        raise ParseError(self.source.diagnostic(tok.line, tok.col, message))

    # --- files, scenarios, clauses

    def parse_file(self) -> ast.FileNode:
        """file := (scenario | policy)* EOF"""
        items: list[ast.ScenarioNode | ast.PolicyNode] = []
        while self.peek().kind != EOF:
            if self.at("scenario"):
                items.append(self._parse_scenario())
            elif self.at("policy"):
                items.append(self._parse_policy())
            else:
                tok = self.peek()
                hint = did_you_mean(tok.text, ("scenario", "policy")) if tok.kind == NAME else ""
                self.fail(tok, f"expected `scenario` or `policy`, got {_describe(tok)}{hint}")
        return ast.FileNode(tuple(items))

    def _parse_scenario(self) -> ast.ScenarioNode:
        """scenario := 'scenario' NAME clause* 'end'"""
        keyword = self.take()
        name = self.expect_name("a scenario name")
        clauses: list[ast.Clause] = []
        while not self.at("end"):
            tok = self.peek()
            if tok.kind == EOF or self.at("scenario") or self.at("policy"):
                self.fail(tok, f"missing `end` for scenario '{name.text}' opened at line {keyword.line}")
            clauses.append(self._parse_clause())
        end = self.take()
        return ast.ScenarioNode(keyword, name, tuple(clauses), end, self.source)

    def _parse_clause(self) -> ast.Clause:
        """clause := 'title' STRING | 'priority' number | 'audience' expr | 'when' pattern
        | 'during' range (',' range)* ['on' days (',' days)*] | 'cooldown' duration
        | 'once' ['per' expr] | 'then' action ('or' action)* | 'set' assignment (',' assignment)*"""
        tok = self.peek()
        if tok.kind != NAME or tok.text not in CLAUSES:
            hint = did_you_mean(tok.text, CLAUSES + ("end",)) if tok.kind == NAME else ""
            self.fail(
                tok,
                f"expected a clause ({', '.join(CLAUSES)}) or `end`, got {_describe(tok)}{hint}",
            )
        kw = self.take()
        value: object
        if kw.text == "title":
            value = self.expect_kind(STRING, "a title in quotes")
        elif kw.text == "priority":
            value = self._parse_number("a priority from 0 to 100")
        elif kw.text == "audience":
            value = self._parse_expr()
        elif kw.text == "when":
            value = self._parse_pattern()
        elif kw.text == "during":
            value = self._parse_during()
        elif kw.text == "cooldown":
            value = self._parse_duration()
        elif kw.text == "once":
            value = self._parse_expr() if self.accept("per") else None
        elif kw.text == "set":
            assignments = [self._parse_assignment(kw)]
            while self.accept(","):
                assignments.append(self._parse_assignment(self.prev))
            value = tuple(assignments)
        else:
            actions = [self._parse_action()]
            while self.accept("or"):
                actions.append(self._parse_action())
            value = tuple(actions)
        return ast.Clause(kw, value)

    def _parse_assignment(self, before: Token) -> ast.Assignment:
        """assignment := 'tags' '.' NAME '=' expr"""
        self.missing("`tags.NAME = EXPR`")
        tok = self.peek()
        if not (tok.kind == NAME and tok.text == "tags"):
            self.fail(tok, f"`set` writes subscriber tags: expected `tags.NAME = EXPR` after '{before.text}', "
                      f"got {_describe(tok)}")
        self.take()
        dot = self.tokens[self.i]  # read directly: ``peek`` refuses a '=' here, which is this mistake
        if not (dot.kind == OP and dot.text == "."):
            if dot.kind == NAME:
                self.missing("'.' and a tag name")
            self.fail(dot, f"expected '.' and a tag name after 'tags' (`set tags.NAME = EXPR`), got {_describe(dot)}")
        self.take()
        name = self.expect_name("a tag name")
        eq = self.tokens[self.i]  # read directly: ``peek`` refuses '=' everywhere else
        if not (eq.kind == OP and eq.text == "="):
            hint = "; `set` assigns with a single '='" if eq.text == "==" else ""
            self.fail(self.peek(), f"expected '=' after tags.{name.text}, got {_describe(self.peek())}{hint}")
        self.i += 1
        return ast.Assignment(tok, name, eq, self._parse_expr())

    def _parse_during(self) -> tuple[tuple[ast.Range, ...], tuple[ast.Days, ...] | None]:
        """during := range (',' range)* ['on' days (',' days)*]"""
        ranges = [self._parse_range()]
        while self.accept(","):
            ranges.append(self._parse_range())
        if not self.accept("on"):
            return tuple(ranges), None
        days = [self._parse_days()]
        while self.accept(","):
            days.append(self._parse_days())
        return tuple(ranges), tuple(days)

    def _parse_range(self) -> ast.Range:
        """range := TIME '..' TIME"""
        start = self.expect_kind(TIME, "a time range such as 07:00..09:30")
        self.expect("..", "'..' between the two times of a range")
        end = self.expect_kind(TIME, "the time a range ends, such as 09:30")
        return ast.Range(start, end)

    def _parse_days(self) -> ast.Days:
        """days := NAME ['..' NAME]"""
        first = self.expect_name("a weekday (mon, tue, wed, thu, fri, sat, sun)")
        last = self.expect_name("a weekday") if self.accept("..") else None
        return ast.Days(first, last)

    def _parse_action(self) -> ast.ActionNode:
        """action := NAME STRING ['with' '{' [param (',' param)* [',']] '}'] ['after' duration]
        param := NAME ':' expr"""
        channel = self.expect_name("a channel such as sms")
        template = self.expect_kind(STRING, "a template name in quotes")
        params: list[tuple[Token, ast.TopExpr]] = []
        if self.accept("with"):
            self.expect("{", "'{' to start the parameters")
            while not self.at("}"):
                key = self.expect_kind(NAME, "a parameter name")
                self.expect(":", "':' after the parameter name")
                params.append((key, self._parse_expr()))
                if not self.accept(","):
                    break
            self.expect("}", "',' or '}'")
        after = self._parse_duration() if self.accept("after") else None
        return ast.ActionNode(channel, template, tuple(params), after)

    # --- values

    def _parse_number(self, what: str) -> ast.Number:
        """number := ['-'] NUMBER"""
        minus = self.accept("-")
        tok = self.expect_kind(NUMBER, what)
        value = self._number(tok)
        return ast.Number(minus or tok, -value if minus else value)

    def _number(self, tok: Token) -> int | float:
        """A NUMBER token's value; refused past ``MAX_DIGITS`` characters (beyond them a
        float is infinite and an int too long for Python to read)."""
        if len(tok.text) > MAX_DIGITS:
            self.fail(tok, f"number too long: at most {MAX_DIGITS} digits")
        return float(tok.text) if "." in tok.text else int(tok.text)

    def _parse_duration(self) -> ast.Duration:
        """duration := DURATION | NUMBER [UNIT]   (the checker accepts only DURATION)"""
        tok = self.peek()
        if tok.kind == DURATION:
            return ast.Duration(self.take(), tok.text)
        self.missing("a duration such as 10m")
        if tok.kind != NUMBER:
            self.fail(tok, f"expected a duration such as 10m, got {_describe(tok)}")
        self.take()
        unit = self.peek()
        if unit.kind == NAME and unit.text in UNITS and unit.line == tok.line:
            self.take()
            return ast.Duration(tok, self.source.text[tok.start : unit.end])
        return ast.Duration(tok, tok.text)

    # --- patterns

    def _parse_pattern(self) -> ast.PatternNode:
        """pattern := schedule | aggregate | dwell | chain"""
        tok = self.peek()
        if tok.kind == NAME and tok.text in AGGREGATES and self.at("(", 1):
            return self._parse_aggregate()
        if self.at("dwell") and self.at("in", 1):
            return self._parse_dwell()
        if self.at("every"):
            return self._parse_schedule()
        return self._parse_chain()

    def _parse_chain(self) -> ast.Chain:
        """chain := step ('->' step)* ['within' duration]"""
        steps = [self._parse_step(None)]
        while self.at("->"):
            steps.append(self._parse_step(self.take()))
        within_tok = self.accept("within")
        within = self._parse_duration() if within_tok else None
        return ast.Chain(tuple(steps), within_tok, within)

    def _parse_step(self, arrow: Token | None) -> ast.Step:
        """step := ['not'] filter"""
        negated = self.accept("not")
        return ast.Step(arrow, negated, self._parse_filter())

    def _parse_filter(self) -> ast.FilterNode:
        """filter := NAME ['as' NAME] ['where' expr]"""
        type_tok = self.expect_name("an event type")
        alias = self.expect_name("an alias") if self.accept("as") else None
        where = self._parse_expr() if self.accept("where") else None
        return ast.FilterNode(type_tok, alias, where)

    def _parse_aggregate(self) -> ast.AggregateNode:
        """aggregate := ('count' '(' filter ')' | ('sum' | 'distinct') '(' filter ',' expr ')')
        CMP number ['within' duration]"""
        kind = self.take()
        self.expect("(")
        flt = self._parse_filter()
        value = None
        if kind.text != "count":
            self.expect(",", f"',' and the value {kind.text} is over")
            value = self._parse_expr()
        self.expect(")", "')'")
        cmp = self.peek()
        if cmp.kind != OP or cmp.text not in COMPARISONS:
            self.fail(cmp, f"expected a comparison ({' '.join(COMPARISONS)}) after {kind.text}(...), "
                      f"got {_describe(cmp)}")
        self.take()
        threshold = self._parse_number(f"a number to compare the {kind.text} with")
        within = self._parse_duration() if self.accept("within") else None
        return ast.AggregateNode(kind, flt, value, cmp, threshold, within)

    def _parse_dwell(self) -> ast.DwellNode:
        """dwell := 'dwell' 'in' 'area' '(' STRING (',' STRING)* ')' 'for' duration"""
        kind = self.take()
        self.take()
        self.expect("area", "`area(\"NAME\")`")
        self.expect("(")
        areas = [self.expect_kind(STRING, "an area name in quotes")]
        while self.accept(","):
            areas.append(self.expect_kind(STRING, "an area name in quotes"))
        self.expect(")", "',' or ')'")
        self.expect("for", "`for` and how long, e.g. `for 20m`")
        return ast.DwellNode(kind, tuple(areas), self._parse_duration())

    def _parse_schedule(self) -> ast.ScheduleNode:
        """schedule := 'every' ('day' | 'week' 'on' NAME | 'month' 'on' 'day' (NUMBER | 'last'))
        'at' TIME ['where' expr]"""
        kind = self.take()
        period = self.peek()
        if period.kind != NAME or period.text not in ("day", "week", "month"):
            self.fail(period, f"expected `day`, `week on DAY` or `month on day N` after `every`, "
                      f"got {_describe(period)}")
        self.take()
        day = None
        if period.text == "week":
            self.expect("on", "`on` and a weekday, e.g. `every week on mon at 09:00`")
            day = self.expect_name("a weekday (mon, tue, wed, thu, fri, sat, sun)")
        elif period.text == "month":
            self.expect("on", "`on day N`, e.g. `every month on day 1 at 10:00`")
            self.expect("day", "`day N` (N from 1 to 28, or `last`), e.g. `on day 1`")
            tok = self.peek()
            if tok.kind == NUMBER or (tok.kind == NAME and tok.text == "last"):
                day = self.take()
            else:
                self.fail(tok, f"expected a day of the month (1 to 28, or `last`), got {_describe(tok)}")
        self.expect("at", "`at HH:MM`, the local time of each instant")
        at = self.expect_kind(TIME, "a local time HH:MM such as 10:00")
        where = self._parse_expr() if self.accept("where") else None
        return ast.ScheduleNode(kind, period, day, at, where)

    # --- the policy

    def _parse_policy(self) -> ast.PolicyNode:
        """policy := 'policy' rule* 'end'"""
        keyword = self.take()
        rules: list[ast.Rule] = []
        while not self.at("end"):
            tok = self.peek()
            if tok.kind == EOF or self.at("scenario") or self.at("policy"):
                self.fail(tok, f"missing `end` for the policy opened at line {keyword.line}")
            rules.append(self._parse_rule())
        self.take()
        return ast.PolicyNode(keyword, tuple(rules), self.source)

    def _parse_rule(self) -> ast.Rule:
        """rule := 'exclude' list_ref (',' list_ref)* | 'cap' NAME number 'per' duration
        | 'quiet' range ['on' days (',' days)*] 'for' NAME (',' NAME)* ('defer' | 'drop')
        | 'arbitrate' duration | hours | capacity | no_repeat | exclusive | control | feedback"""
        tok = self.peek()
        if tok.kind != NAME or tok.text not in POLICY_RULES:
            hint = did_you_mean(tok.text, POLICY_RULES + ("end",)) if tok.kind == NAME else ""
            self.fail(tok, f"expected a policy rule ({', '.join(POLICY_RULES)}) or `end`, "
                      f"got {_describe(tok)}{hint}")
        kw = self.take()
        if kw.text == "exclude":
            lists = [self._parse_list_ref()]
            while self.accept(","):
                lists.append(self._parse_list_ref())
            return ast.Exclude(kw, tuple(lists))
        if kw.text == "cap":
            channel = self.expect_name("a channel or `any`")
            limit = self._parse_number("how many sends")
            self.expect("per", "`per` and a duration, e.g. `per 1d`")
            return ast.CapRule(kw, channel, limit, self._parse_duration())
        if kw.text == "quiet":
            rng = self._parse_range()
            days = self._parse_on_days()
            self.expect("for", "`for` and the channels")
            channels = [self.expect_name("a channel")]
            while self.accept(","):
                channels.append(self.expect_name("a channel"))
            if not (self.at("defer") or self.at("drop")):
                self.fail(self.peek(), f"expected `defer` or `drop`, got {_describe(self.peek())}")
            return ast.QuietRule(kw, rng, tuple(channels), self.take(), days)
        if kw.text == "arbitrate":
            return ast.Arbitrate(kw, self._parse_duration())
        return self._parse_extension(kw)

    def _parse_on_days(self) -> tuple[ast.Days, ...] | None:
        """on_days := ['on' days (',' days)*]"""
        if not self.accept("on"):
            return None
        days = [self._parse_days()]
        while self.accept(","):
            days.append(self._parse_days())
        return tuple(days)

    def _parse_names(self, what: str) -> tuple[Token, ...]:
        """names := NAME (',' NAME)*"""
        names = [self.expect_kind(NAME, what)]
        while self.accept(","):
            names.append(self.expect_kind(NAME, what))
        return tuple(names)

    def _parse_extension(self, kw: Token) -> ast.Rule:
        """hours := 'hours' NAME range (',' range)* ['on' days (',' days)*]
        capacity := 'capacity' NAME number 'per' duration
        no_repeat := 'no_repeat' 'after' NAME (',' NAME)* 'for' duration
        exclusive := 'exclusive' STRING ':' NAME (',' NAME)* 'per' duration
        control := 'control' number '%' ['for' NAME (',' NAME)*]
        feedback := 'feedback' 'within' duration"""
        if kw.text == "hours":
            channel = self.expect_kind(NAME, "a channel")
            ranges = [self._parse_range()]
            while self.accept(","):
                ranges.append(self._parse_range())
            return ast.HoursRule(kw, channel, tuple(ranges), self._parse_on_days())
        if kw.text == "capacity":
            channel = self.expect_kind(NAME, "a channel")
            limit = self._parse_number("how many sends")
            self.expect("per", "`per` and a number of days, e.g. `per 1d`")
            return ast.CapacityRule(kw, channel, limit, self._parse_duration())
        if kw.text == "no_repeat":
            self.expect("after", "`after` and the outcomes, e.g. `after accepted, rejected`")
            outcomes = self._parse_names("an outcome (accepted, rejected, clicked, delivered, failed)")
            self.expect("for", "`for` and a duration, e.g. `for 30d`")
            return ast.NoRepeatRule(kw, outcomes, self._parse_duration())
        if kw.text == "exclusive":
            name = self.expect_kind(STRING, "the group's name in quotes")
            self.expect(":", "':' after the group's name")
            scenarios = self._parse_names("a scenario name")
            self.expect("per", "`per` and a duration, e.g. `per 7d`")
            return ast.ExclusiveRule(kw, name, scenarios, self._parse_duration())
        if kw.text == "feedback":
            self.expect("within", "`within` and a duration, e.g. `feedback within 30d`")
            return ast.FeedbackRule(kw, self._parse_duration())
        percent = self._parse_number("a share such as 5%")
        self.expect("%", "'%' after the share, e.g. `control 5%`")
        scenarios = self._parse_names("a scenario name") if self.accept("for") else ()
        return ast.ControlRule(kw, percent, scenarios)

    def _parse_list_ref(self) -> Token:
        """list_ref := 'list' '(' STRING ')'"""
        self.expect("list", "list(\"NAME\")")
        self.expect("(")
        name = self.expect_kind(STRING, "a list name in quotes")
        self.expect(")")
        return name

    # --- expressions

    def _parse_expr(self) -> ast.TopExpr:
        """expr := or_expr"""
        first = self.expr_start = self.peek()
        node = self._parse_or()
        return ast.TopExpr(node, first, self.prev)

    def _parse_or(self) -> ast.Node:
        """or_expr := and_expr ('or' and_expr)*"""
        left = self._parse_and()
        while self.at("or"):
            op = self.take()
            left = ast.Binary("or", op, left, self._parse_and())
        return left

    def _parse_and(self) -> ast.Node:
        """and_expr := not_expr ('and' not_expr)*"""
        left = self._parse_not()
        while self.at("and"):
            op = self.take()
            left = ast.Binary("and", op, left, self._parse_not())
        return left

    def _parse_not(self) -> ast.Node:
        """not_expr := 'not' not_expr | comparison"""
        if self.at("not"):
            op = self.take()
            return ast.Unary(op, self._parse_not())
        return self._parse_comparison()

    def _parse_comparison(self) -> ast.Node:
        """comparison := membership [('==' | '!=' | '<' | '<=' | '>' | '>=') membership]"""
        left = self._parse_membership()
        tok = self.peek()
        if tok.kind != OP or tok.text not in COMPARISONS:
            return left
        self.take()
        node = ast.Binary(tok.text, tok, left, self._parse_membership())
        after = self.peek()
        if after.kind == OP and after.text in COMPARISONS:
            self.fail(after, "comparisons cannot be chained: write `a < b and b < c`")
        return node

    def _parse_membership(self) -> ast.Node:
        """membership := additive [('in' | 'not' 'in' | 'contains' | 'matches') additive]"""
        left = self._parse_additive()
        if self.at("not") and self.at("in", 1):
            op_tok = self.take()
            self.take()
            op = "not in"
        elif any(self.at(word) for word in _MEMBERSHIP):
            op_tok = self.take()
            op = op_tok.text
        else:
            return left
        node = ast.Binary(op, op_tok, left, self._parse_additive())
        if any(self.at(word) for word in _MEMBERSHIP) or (self.at("not") and self.at("in", 1)):
            self.fail(self.peek(), f"`{self.peek().text}` cannot follow `{op}` directly: use parentheses")
        return node

    def _parse_additive(self) -> ast.Node:
        """additive := term (('+' | '-') term)*"""
        left = self._parse_term()
        while self.peek().kind == OP and self.peek().text in ("+", "-"):
            op = self.take()
            left = ast.Binary(op.text, op, left, self._parse_term())
        return left

    def _parse_term(self) -> ast.Node:
        """term := unary (('*' | '/') unary)*"""
        left = self._parse_unary()
        while self.peek().kind == OP and self.peek().text in ("*", "/"):
            op = self.take()
            left = ast.Binary(op.text, op, left, self._parse_unary())
        return left

    def _parse_unary(self) -> ast.Node:
        """unary := '-' unary | primary"""
        if self.peek().kind == OP and self.peek().text == "-":
            op = self.take()
            return ast.Unary(op, self._parse_unary())
        return self._parse_primary()

    def _parse_primary(self) -> ast.Node:
        """primary := NUMBER | STRING | 'true' | 'false' | 'null' | '[' [expr (',' expr)* [',']] ']'
        | '(' expr ')' | NAME ['.' NAME | '(' [expr (',' expr)*] ')']"""
        self.missing("a value")
        tok = self.peek()
        if tok.kind == NUMBER:
            self.take()
            return ast.Literal(tok, self._number(tok))
        if tok.kind == STRING:
            self.take()
            return ast.Literal(tok, string_value(tok))
        if tok.kind == OP and tok.text == "[":
            self.take()
            items = []
            while not self.at("]"):
                items.append(self._parse_or())
                if not self.accept(","):
                    break
            self.expect("]", "',' or ']'")
            return ast.ListLit(tok, tuple(items))
        if tok.kind == OP and tok.text == "(":
            self.take()
            inner = self._parse_or()
            self.expect(")", "')'")
            return inner
        if tok.kind == DURATION:
            self.take()
            return ast.DurationLit(tok)
        if tok.kind != NAME or tok.text in ("and", "or", "not", "in", "contains", "matches"):
            self.fail(tok, f"expected a value, got {_describe(tok)}")
        if tok.text in TERMS and self.at("(", 1):
            return self._parse_term_value()
        self.take()
        if tok.text in ("true", "false", "null"):
            return ast.Literal(tok, {"true": True, "false": False, "null": None}[tok.text])
        if self.accept("."):
            return ast.Dotted(tok, self.expect_kind(NAME, f"a name after '{tok.text}.'"))
        if self.accept("("):
            args = []
            while not self.at(")"):
                args.append(self._parse_or())
                if not self.accept(","):
                    break
            self.expect(")", "',' or ')'")
            return ast.Call(tok, tuple(args))
        return ast.Name(tok)

    def _parse_term_value(self) -> ast.Node:
        """term_value := 'since' '(' filter ')'
        | ('count' '(' filter ')' | ('sum' | 'top') '(' filter ',' expr ')') 'in' NAME '(' number ')'"""
        kind = self.take()
        self.take()
        start = self.expr_start
        flt = self._parse_filter()
        value = None
        if kind.text in ("sum", "top"):
            self.expect(",", f"',' and the value {kind.text} is over")
            value = self._parse_expr()
        self.expr_start = start
        self.expect(")", "')'")
        if kind.text == "since":
            return ast.SinceTerm(kind, flt)
        in_tok = self.peek()
        if not self.at("in"):
            self.fail(in_tok, f"expected `in` and a period after {kind.text}(...) here, e.g. "
                      f"`{kind.text}(...) in month(-1)`; a pattern `{kind.text}(...) >= N within D` "
                      "is written only right after `when`")
        self.take()
        period = self.expect_kind(NAME, "a period: day(N), week(N) or month(N)")
        self.expect("(", "'(' and a number, e.g. month(-1)")
        n = self._parse_number("a whole number, 0 or below, e.g. month(-1)")
        self.expect(")", "')'")
        return ast.PeriodTerm(kind, flt, value, in_tok, period, n)
