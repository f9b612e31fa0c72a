"""Scenario actions checked against the template catalogue, reported like any scenario error.

``kairos check`` and ``kairos replay`` refuse a scenario whose action names a
template the catalogue lacks, a channel the template has no text for, or a
template placeholder the action's ``with`` does not give — at the action's
place, in the dsl's ``FILE:LINE:COL: error:`` format with the source line and
a caret. The catalogue is ``--templates FILE`` or a ``templates.toml`` beside
the scenario files (in a scenario folder passed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from kairos.adapters import TemplateCatalog, TemplateUse
from kairos.dsl import CheckError, Diagnostic
from kairos.plan import Plan

TEMPLATES_FILE = "templates.toml"


def find_templates(paths: Sequence[str | Path]) -> Path | None:
    """The ``templates.toml`` in the first scenario folder passed (or beside the first file) that has one."""
    for p in paths:
        path = Path(p)
        folder = path if path.is_dir() else path.parent
        candidate = folder / TEMPLATES_FILE
        if candidate.is_file():
            return candidate
    return None


def check_templates(plan: Plan, paths: Sequence[str | Path], templates: str | None) -> Path | None:
    """Check every action against the template catalogue (``templates``, else the one ``find_templates``
    finds beside ``paths``); returns the catalogue used (None: none found).

    Raises ``dsl.CheckError`` (the actions at fault) or ``TemplateError`` (an unreadable catalogue).
    """
    path = Path(templates) if templates is not None else find_templates(paths)
    if path is None:
        return None
    problems = template_diagnostics(plan, TemplateCatalog.load(path))
    if problems:
        raise CheckError(problems)
    return path


def template_diagnostics(plan: Plan, catalog: TemplateCatalog) -> list[Diagnostic]:
    """One diagnostic per problem of each scenario action with the catalogue, in file order."""
    found: list[Diagnostic] = []
    lines: dict[str, list[str]] = {}
    for scn in plan.scenarios:
        for action in scn.actions:
            use = TemplateUse(action.template, action.channel, frozenset(key for key, _ in action.params))
            problems = catalog.problems([use])
            if not problems:
                continue
            origin = action.origin or scn.origin
            source = _line(lines, origin.file, origin.line)
            for problem in problems:
                message = f"{problem}; the templates are read from {catalog.origin}"
                found.append(Diagnostic(origin.file, origin.line, origin.col, message, source))
    return found


def _line(cache: dict[str, list[str]], file: str, number: int) -> str:
    """The 1-based line of a scenario file (empty when the file cannot be read again)."""
    text = cache.get(file)
    if text is None:
        try:
            text = cache[file] = Path(file).read_text(encoding="utf-8").split("\n")
        except OSError:
            text = cache[file] = []
    return text[number - 1].rstrip("\r") if number <= len(text) else ""
