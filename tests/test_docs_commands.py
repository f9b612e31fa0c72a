"""The commands the README and docs/ show run as written: their marked blocks are extracted and executed.

A block is run only when an HTML comment (invisible on GitHub) marks it, on
the line before its fence:

- ``<!-- file: PATH -->``: the block is written to PATH (a scenario a later
  command reads);
- ``<!-- run -->``: the block is a shell script, run with bash (``-eu -o
  pipefail``) and must exit 0;
- ``<!-- run shows -->``: the block is a terminal session: each ``$ `` line
  (with its ``\\`` continuation lines) is run, and every line shown after it
  must appear in what the command printed, except a line with ``…`` in it
  (the page leaves something out there); ``exit=N`` after ``run`` expects
  that exit status instead of 0.

The blocks of one page run in order in one folder laid out as a checkout (a
copy of ``scenarios/`` and ``examples/``, ``kairos.example.toml``) with the
virtualenv's commands first on the PATH, so a block may use what an earlier
one wrote. Unmarked blocks are not run: syntax summaries, output, and the
daemon and Kafka recipes, which their own tests run
(``tests/daemon/test_quickstart_recipe.py``, ``tests/daemon/test_scaling_recipe.py``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"<!-- (file: (?P<path>\S+)|run(?P<shows> shows)?(?: exit=(?P<exit>\d+))?) -->\n"
                   r"```[\w-]*\n(?P<body>.*?)```", re.S)


def marked_blocks(page: str) -> list[re.Match[str]]:
    """The page's marked blocks, in order."""
    return list(BLOCK.finditer((ROOT / page).read_text(encoding="utf-8")))


def _checkout(folder: Path) -> dict[str, str]:
    """Lay ``folder`` out as a checkout; the environment that finds the virtualenv's commands first."""
    shutil.copytree(ROOT / "scenarios", folder / "scenarios")
    shutil.copytree(ROOT / "examples", folder / "examples")
    shutil.copy(ROOT / "kairos.example.toml", folder)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    return env


def _session(body: str) -> list[tuple[str, list[str]]]:
    """A terminal session's commands, each with the lines shown after it."""
    steps: list[tuple[str, list[str]]] = []
    lines = iter(body.splitlines())
    for line in lines:
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\"):
                command = command[:-1] + " " + next(lines).strip()
            steps.append((command, []))
        elif steps:
            steps[-1][1].append(line)
    return steps


def _run(script: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-eu", "-o", "pipefail", "-c", script], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("page", [p for p in PAGES if marked_blocks(p)])
def test_the_commands_a_page_shows_run_as_written(page: str, tmp_path: Path) -> None:
    env = _checkout(tmp_path)
    for block in marked_blocks(page):
        body = block["body"]
        line = (ROOT / page).read_text(encoding="utf-8")[:block.start()].count("\n") + 1
        if block["path"]:
            target = tmp_path / block["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body, encoding="utf-8")
            continue
        expected = int(block["exit"] or 0)
        steps = _session(body) if block["shows"] else [(body, [])]
        assert steps, f"{page}:{line}: a `run shows` block without a `$ ` command"
        for command, shown in steps:
            done = _run(command, tmp_path, env)
            printed = done.stdout + done.stderr
            assert done.returncode == expected, (
                f"{page}:{line}: {command!r} exited {done.returncode}, not {expected}:\n{printed}")
            got = {out.rstrip() for out in printed.splitlines()}
            missing = [s for s in shown if "…" not in s and s.rstrip() not in got]
            assert not missing, f"{page}:{line}: {command!r} did not print {missing}; it printed:\n{printed}"


def test_the_readme_and_the_guides_have_commands_that_run() -> None:
    """The convention is in use where a newcomer starts: a page losing its markers is noticed."""
    pages = {p for p in PAGES if any(not b["path"] for b in marked_blocks(p))}
    assert {"README.md", "docs/commands.md", "docs/language.md"} <= pages
