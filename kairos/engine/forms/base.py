"""What every pattern form shares: the runtime base class, the host it talks to, and the
helpers for keeping state small (interned keys, events kept with shared strings).

A runtime is built once per scenario from its compiled ``plan`` pattern (shared by
every subscriber) and keeps a dict msisdn → compact state that exists only while
something can still complete from it. Runtimes do no I/O and never read a clock:
the engine feeds them events and deadlines in event time.
"""

from __future__ import annotations

import operator
import sys
from typing import Any, Protocol
from collections.abc import Callable

from kairos.engine._conjuncts import Guard, event_guard
from kairos.plan import Filter, define, filename

Handler = Callable[[Any], None]

COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}

#: what a first step's filter gets for ``a``: it may only read its own event ``e``
NO_ALIASES: tuple[Any, ...] = ()

#: most distinct strings ``kept_event`` shares (cells, apps …); past it, strings are kept as they come
MAX_SHARED_STRINGS = 1 << 20
_shared: dict[str, str] = {}


def shared(value: Any) -> Any:
    """The one kept copy of a text (the table ``kept_event`` fills), so a million states naming one
    cell hold one string, not the one each decoded line made; anything else as it is."""
    if value.__class__ is not str:
        return value
    s = _shared.get(value)
    if s is not None:
        return s
    if len(_shared) < MAX_SHARED_STRINGS:
        _shared[value] = value
    return value


#: a number kept as a state key: ``sys.intern`` gives every runtime the same copy of it —
#: the reference's (``Reference`` interns the tag table's numbers), or the first seen
_key = sys.intern

#: state that may live this long is keyed by interned numbers; shorter-lived state would
#: pay for interning (and un-interning) a number at every short burst and save little
LONG_LIVED_MS = 3_600_000


def _same(m: str) -> str:
    return m


def key_for(within_ms: int) -> Callable[[str], str]:
    """How a runtime whose state lives up to ``within_ms`` keeps a new state's number."""
    return _key if within_ms >= LONG_LIVED_MS else _same


_keepers: dict[type, Callable[[Any, str], Any]] = {}


def kept_event(ev: Any, msisdn: str) -> Any:
    """``ev`` made cheap to keep for long: its number is ``msisdn`` (the state's key) and
    its free-text fields share one copy of each distinct value (a cell named by a
    million waits is stored once), instead of the strings each decoded line made."""
    keep = _keepers.get(ev.__class__)
    if keep is None:
        keep = _keepers[ev.__class__] = _keeper(ev.__class__)
    return keep(ev, msisdn)


def _keeper(cls: type) -> Callable[[Any, str], Any]:
    """``kept_event`` for one event class, generated: a few attribute moves per kept event."""
    names = [n for n in cls.__struct_fields__ if n not in ("msisdn", "ts")]  # type: ignore[attr-defined]
    body = ["def keep(ev, msisdn):", "    ev.msisdn = msisdn"]
    for name in names:
        body += [
            f"    v = ev.{name}",
            "    if v.__class__ is str:",
            "        s = shared.get(v)",
            "        if s is not None:",
            f"            ev.{name} = s",
            "        elif len(shared) < cap:",
            "            shared[v] = v",
        ]
    body.append("    return ev")
    ns: dict[str, Any] = {"shared": _shared, "cap": MAX_SHARED_STRINGS}
    return define("keep", "\n".join(body) + "\n", ns, filename("keeper", cls.__struct_config__.tag))  # type: ignore[attr-defined]


class Host(Protocol):
    """What a pattern runtime needs from the engine."""

    ctx: Any
    reference: Any  #: the loaded reference data (engine._reference.Reference)

    def complete(self, rt: PatternRuntime, msisdn: str, t: int, e: Any, a: tuple[Any, ...]) -> None: ...
    def schedule(self, when: int, rt: PatternRuntime, msisdn: str) -> None: ...
    def watch(self, when: int, owner: Any, msisdn: str) -> None: ...


class PatternRuntime:
    """Base: the scenario index, the host, and the per-subscriber states."""

    __slots__ = ("index", "host", "states", "_keyof")

    def __init__(self, index: int, host: Host) -> None:
        self.index = index
        self.host = host
        self.states: dict[str, Any] = {}
        self._keyof: Callable[[str], str] = _key  # how a new state's number is kept

    #: a completion is the event itself, so the route may check the audience before calling ``on_match``
    AUDIENCE_IN_ROUTE = False

    def handlers(self) -> dict[str, Handler]:
        """Event type name → the function to call with each event of that type (a runtime
        without an ``entry``)."""
        raise NotImplementedError

    def guard(self, type_name: str) -> Guard | None:
        """A condition the route checks before calling ``handlers()[type_name]``; None: always call.

        It must hold whenever the handler would change anything (see ``Guarded``).
        """
        return None

    def _member(self) -> Guard:
        """The guard "the event's subscriber has state here"."""
        name = f"_r{self.index}_states"
        return Guard(f"e.msisdn in {name}", {name: self.states})

    def _event_guard(self, f: Filter, step: int = 0) -> Guard | None:
        return event_guard(f.where, f"_r{self.index}_{step}")

    def entry(self) -> tuple[str, Filter, Handler] | None:
        """(type, filter, on_match) when the runtime reads one type through one filter.

        The engine then evaluates the filter inline in its fused per-type route
        and calls ``on_match`` only for passing events.
        """
        return None

    def fused(self, complete: Callable[..., None], watch: Callable[..., None], gates: Any,
              stats: Any) -> Fused | None:
        """``on_match`` of the ``entry`` as statements the route pastes in its place (the form's fast
        path); None: the route calls it. ``complete``/``watch``: the host's; ``gates``: the scenario's
        cool-down and ``once`` (None: none); ``stats``: its ``ScenarioStats``. Only asked by an engine
        without an observer (which must hear every completion)."""
        return None

    def on_deadline(self, msisdn: str, when: int) -> None:
        """A deadline this runtime scheduled is due (it may be stale)."""

    def expiry(self, state: Any) -> int | None:
        """After this time nothing can complete from ``state``; None: not time-bound."""
        return None

    def collect(self, msisdn: str, now: int) -> None:
        """Drop the subscriber's state if it has expired, else keep watching it."""
        state = self.states.get(msisdn)
        if state is None:
            return
        exp = self.expiry(state)
        if exp is None:
            return
        if exp < now:
            del self.states[msisdn]
        else:
            self.host.watch(exp, self, msisdn)

    # --- snapshot / restore (engine._snapshot) ---------------------------

    def state_type(self, event: Any) -> Any:
        """The msgspec type of ``states`` as a snapshot stores it; ``event`` is the event union."""
        return dict[str, Any]

    def restore(self, states: dict[str, Any]) -> None:
        """Take back the states a snapshot held (decoded with ``state_type``), or another
        runtime's live ``states`` of the same pattern (a reload)."""
        self.states.update(states)

    def snapshot_states(self) -> dict[str, Any]:
        """``states`` in the form ``state_type`` describes (what a snapshot encodes)."""
        return self.states

    def state_of(self, msisdn: str) -> Any:
        """One subscriber's state in the snapshot's form; None if there is none."""
        state = self.states.get(msisdn)
        return None if state is None else self.snapshot_states_of(state)

    def snapshot_states_of(self, state: Any) -> Any:
        return state


def passes(f: Filter) -> Callable[[Any, tuple[Any, ...], Any], bool] | None:
    """A filter's ``where`` as a function, or None when it has none (every event of its type passes)."""
    return None if f.where is None else f.where.fn


def any_guard(parts: list[Guard]) -> Guard | None:
    """The guard that passes when any of ``parts`` passes; None when there are none."""
    if not parts:
        return None
    out = parts[0]
    for g in parts[1:]:
        out = out | g
    return out


def cooling_test(last: str, t: str, cooldown_ms: int) -> str:
    """The cool-down's test as Python text: ``last`` (a subscriber's last trigger time, or None)
    still cools at ``t``. The one text the engine's gate compiles and a fused count route pastes."""
    return f"{last} is not None and {t} < {last} + {int(cooldown_ms)}"


class Fused:
    """Statements over ``e`` (the event) that a route runs instead of calling ``on_match(e)``.

    ``ns`` holds the names they use, unique to their owner so several fit one route.
    """

    __slots__ = ("lines", "ns")

    def __init__(self, lines: list[str], ns: dict[str, Any]) -> None:
        self.lines = lines
        self.ns = ns
