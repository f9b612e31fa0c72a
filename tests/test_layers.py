"""The dependency direction holds: dsl → plan ← engine, adapters alone, the application on top, the bench beside.

Every import counts, wherever it is written: at the top of a module, inside a
function, or under ``if TYPE_CHECKING:`` (STYLE.md: the plan is a leaf).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("plan", "dsl", "engine", "adapters")

#: what each library may import of the project (the application and the bench: never)
ALLOWED = {
    "plan": set(),
    "dsl": {"plan"},
    "engine": {"plan"},  # delivery (the outbox) lives with the channels: the application joins them
    "adapters": set(),
}

#: the parts the daemon composes; each declares the interface it needs and is handed the daemon
DAEMON_PARTS = ("kairos._http", "kairos._kafka", "kairos._kafka_feedback", "kairos._metrics", "kairos._reload",
                "kairos._snapfiles", "kairos._units")

#: (importing module, private module of another package) that stay for now, each with its reason
PRIVATE_IMPORTS_ALLOWED = {
    ("bench.live_tail", "kairos._compile"):
        "the bench compiles the catalogue exactly as every kairos command does",
    ("bench.live_tail", "kairos.engine._deadlines"):
        "the bench times the engine's occasional work (bucket openings, sweeps, column growth) by wrapping it",
    ("bench.live_tail", "kairos.engine._engine"):
        "the bench times the engine's occasional work (bucket openings, sweeps, column growth) by wrapping it",
    ("bench.live_tail", "kairos.engine._periods"):
        "the bench times the engine's occasional work (bucket openings, sweeps, column growth) by wrapping it",
    ("bench.live_tail", "kairos.engine._universe"):
        "the bench times the engine's occasional work (bucket openings, sweeps, column growth) by wrapping it",
    ("bench.snapshot_pause", "kairos.engine._events"):
        "the bench builds Dpi events directly; the engine exports the event family only as a union",
    ("bench._contenders", "kairos._compile"):
        "the bench compiles the catalogue exactly as every kairos command does; the application has no "
        "public API besides the command",
    ("bench.daemon_ingest", "kairos._config"):
        "the bench measures the daemon's ingest in process, from its configuration file",
    ("bench.daemon_ingest", "kairos._daemon"):
        "the bench measures the daemon's ingest in process; its only public face is `kairos run`",
    ("bench.snapshot_pause", "kairos._snapfiles"):
        "the bench measures the pause of the daemon's own snapshot writer",
    ("bench.live_sweep", "kairos._units"):
        "the bench measures live latency through the daemon's own unit (its push and its sweep turns)",
    ("bench._runner", "kairos._progress"):
        "the bench shows its runs on a terminal with the progress line of kairos replay and split",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for folder in ("kairos", "bench") for p in sorted((ROOT / folder).rglob("*.py"))}
APPLICATION = sorted(
    m for m in MODULES if m == "kairos" or (m.startswith("kairos.") and m.split(".")[1] not in LIBRARIES)
)


def _package_of(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str, *, names: bool = False) -> set[str]:
    """Every module ``module`` imports anywhere in its file; ``names``: also ``from M import x`` as ``M.x``
    when ``x`` is not a module (to see private names)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"), str(MODULES[module]))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES or names else node.module)
    return {name for name in found if name.split(".")[0] in ("kairos", "bench")}


def _project_imports(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for module in MODULES:
        if module.split(".")[:2] != ["kairos", package]:
            continue
        for name in _imports(module):
            parts = name.split(".")
            if parts[0] == "bench":
                top = "bench"
            else:
                top = parts[1] if len(parts) > 1 and parts[1] in LIBRARIES else "kairos"
            if top != package:
                found.setdefault(top, set()).add(str(MODULES[module].relative_to(ROOT)))
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_the_layering_allows(package):
    forbidden = {k: v for k, v in _project_imports(package).items() if k not in ALLOWED[package]}
    assert forbidden == {}


def test_the_application_never_imports_the_bench():
    """``kairos demo`` and ``kairos.traffic`` work where Kairos is installed without the repository."""
    found = {m: sorted(n for n in _imports(m) if n.split(".")[0] == "bench") for m in APPLICATION}
    assert {} == {m: names for m, names in found.items() if names}


@pytest.mark.parametrize("part", DAEMON_PARTS)
def test_a_part_of_the_daemon_never_imports_the_daemon_or_the_command_line(part):
    assert set() == _imports(part) & {"kairos._daemon", "kairos._cli"}


def test_the_application_modules_import_each_other_without_a_cycle():
    graph = {m: sorted(n for n in _imports(m) if n in APPLICATION and n != m) for m in APPLICATION}
    assert [] == _cycles(graph)


def test_a_private_module_is_imported_only_inside_its_own_package():
    """``kairos.engine._x`` only from within ``kairos.engine``; anyone else imports the package's public face."""
    found = set()
    for module in MODULES:
        inside = _package_of(module)
        for name in _imports(module, names=True):
            parts = name.split(".")
            private = next((i for i, p in enumerate(parts) if i > 0 and p.startswith("_")
                            and not p.startswith("__")), None)
            if private is None:
                continue
            owner = ".".join(parts[:private])
            if inside != owner and not inside.startswith(owner + "."):
                found.add((module, ".".join(parts[:private + 1])))
    assert set() == found - set(PRIVATE_IMPORTS_ALLOWED)
    assert set() == set(PRIVATE_IMPORTS_ALLOWED) - found, "an allowed import is gone: remove it from the list"


def test_the_cycle_finder_finds_a_cycle_and_only_one():
    assert [["a", "b", "c"]] == _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]})
    assert [] == _cycles({"a": ["b"], "b": ["c"], "c": [], "d": ["a", "c"]})


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The import cycles of ``graph``: its strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_module_of_the_engine_is_part_of_an_import_cycle():
    """The engine reads top-down: ``_engine`` hands triggers to ``_policy`` through a narrow interface,
    never the other way round (module-level, ``TYPE_CHECKING`` and in-function imports all count)."""
    engine = [m for m in MODULES if m.startswith("kairos.engine.")]
    graph = {m: sorted(n for n in _imports(m) if n in engine and n != m) for m in engine}
    assert [] == _cycles(graph)
