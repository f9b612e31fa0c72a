"""The dependency direction dsl → plan ← engine → adapters holds (STYLE.md: the plan is a leaf)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("plan", "dsl", "engine", "adapters")

#: what each package may import of the project
ALLOWED = {
    "plan": set(),
    "dsl": {"plan"},
    "engine": {"plan", "adapters"},
    "adapters": set(),
}


def _project_imports(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "kairos" / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "kairos":
                names = [f"kairos.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] == "bench":
                    top = "bench"
                elif parts[0] == "kairos":
                    top = parts[1] if len(parts) > 1 and parts[1] in LIBRARIES else "kairos"
                else:
                    continue
                if top != package:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_the_layering_allows(package):
    forbidden = {k: v for k, v in _project_imports(package).items() if k not in ALLOWED[package]}
    assert forbidden == {}
