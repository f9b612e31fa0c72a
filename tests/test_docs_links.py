"""The README's and docs/'s links lead somewhere: every relative link names a file of the checkout and,
with ``#anchor``, a heading of that file (as GitHub spells the anchor)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)|<img src=\"([^\"]+)\"")
# Pages another change of the same release adds; drop a name once it exists.
PENDING: set[Path] = set()


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    anchors, fenced = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        fenced ^= line.startswith("```")
        if not fenced and (m := re.match(r"#+ (.*)", line)):
            anchors.add(_slug(m[1]))
    return anchors


def _text_outside_code(page: Path) -> str:
    return re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)


def test_every_relative_link_of_the_readme_and_docs_resolves() -> None:
    broken = []
    for page in PAGES:
        for m in LINK.finditer(_text_outside_code(page)):
            link = m[1] or m[2]
            if re.match(r"https?:|mailto:", link):
                continue
            path, _, anchor = link.partition("#")
            target = (page.parent / path).resolve() if path else page
            if target in PENDING and not target.exists():
                continue
            if not target.exists():
                broken.append(f"{page.relative_to(ROOT)}: {link} (no such file)")
            elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
                broken.append(f"{page.relative_to(ROOT)}: {link} (no such heading)")
    assert not broken, "\n".join(broken)


def test_nothing_links_to_a_readme_section_that_moved_to_docs() -> None:
    """A ``README.md#…`` link anywhere in the repository names a heading the README still has."""
    anchors = _anchors(ROOT / "README.md")
    stale = []
    for path in [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), *ROOT.glob("scenarios/**/*.md")]:
        for anchor in re.findall(r"README\.md#([\w\-]+)", path.read_text(encoding="utf-8")):
            if anchor not in anchors:
                stale.append(f"{path.relative_to(ROOT)}: README.md#{anchor}")
    assert not stale, "\n".join(stale)
