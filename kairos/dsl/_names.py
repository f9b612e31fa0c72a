"""Names only the reference data knows, checked against what a reference folder holds.

A ``list("NAME")``, an area (``in_area``, ``dwell in area``) or a ``tags.NAME``
is valid language whatever NAME is; whether it means anything depends on the
reference folder the scenarios run with. Given that folder's names,
``check_names`` reports each name it lacks at its use, as the checker reports
its own errors (``kairos check --reference DIR``, ``kairos replay``).
"""

from __future__ import annotations

import linecache
from collections.abc import Callable, Collection, Iterable

from kairos import plan
from kairos.dsl._diagnostics import Diagnostic, did_you_mean

#: known names a message lists when none is close to the unknown one
_LISTED = 12


def check_names(compiled: plan.Plan, *, lists: Collection[str], areas: Collection[str],
                tags: Collection[str] | None = None) -> list[Diagnostic]:
    """Every problem with ``compiled``'s names against a reference folder's, in file order.

    An error at each use of a list (a scenario's or the policy's ``exclude``) or an area the folder
    lacks: the engine cannot run such a plan. With ``tags`` (the names seen in ``tags.jsonl``), a
    warning at the first read of each tag that no subscriber has and no loaded scenario's ``set``
    writes: a ``profile`` event may still bring it, so it is no error, but it is often a typo.
    """
    uses = [u for s in compiled.scenarios for u in s.names]
    if compiled.policy is not None:
        uses.extend(compiled.policy.names)
    written = {t.name for s in compiled.scenarios for t in s.sets}
    known_tags = None if tags is None else set(tags) | written
    out: list[Diagnostic] = []
    warned: set[str] = set()
    for use in sorted(uses, key=_order(compiled.files)):
        if use.kind == "list" and use.name not in lists:
            out.append(_at(use, f"unknown list '{use.name}': the reference data has no lists/{use.name}.txt"
                                f"{_hint(use.name, lists, 'list')}"))
        elif use.kind == "area" and use.name not in areas:
            out.append(_at(use, f"unknown area '{use.name}': no cell in cells.csv is in it"
                                f"{_hint(use.name, areas, 'area')}"))
        elif use.kind == "tag" and known_tags is not None and use.name not in known_tags and use.name not in warned:
            warned.add(use.name)
            out.append(_at(use, f"no subscriber in tags.jsonl has a tag '{use.name}' and no scenario sets it: "
                                f"it reads null unless a `profile` event brings it{did_you_mean(use.name, known_tags)}",
                           "warning"))
    return out


def _order(files: Iterable[str]) -> Callable[[plan.NameUse], tuple[int, str, int, int]]:
    """Sort key: the plan's file order (the policy's file may come last), then line and column."""
    rank = {name: i for i, name in reversed(list(enumerate(files)))}

    def key(use: plan.NameUse) -> tuple[int, str, int, int]:
        o = use.origin
        return rank.get(o.file, len(rank)), o.file, o.line, o.col

    return key


def _hint(name: str, known: Collection[str], what: str) -> str:
    """Did-you-mean when one known name is close; else the known names (a few), or that there are none."""
    close = did_you_mean(name, known)
    if close:
        return close
    if not known:
        return f" (nor any other {what})"
    names = sorted(known)
    shown = ", ".join(names[:_LISTED]) + (", …" if len(names) > _LISTED else "")
    return f" (the reference data's {what}s: {shown})"


def _at(use: plan.NameUse, message: str, severity: str = "error") -> Diagnostic:
    o = use.origin
    linecache.checkcache(o.file)  # a file read from disk again if it changed (a daemon's reload)
    line = linecache.getline(o.file, o.line).rstrip("\r\n")
    return Diagnostic(o.file, o.line, o.col, message, line, severity)  # type: ignore[arg-type]  # error or warning
