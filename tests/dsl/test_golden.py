"""Every kind of error renders exactly as pinned in tests/dsl/golden (byte for byte).

A case is ``NAME.kairos`` (or a folder ``NAME/`` of them) and ``NAME.expected``,
the full output of ``str(CheckError)`` plus a newline. Run with
``KAIROS_UPDATE_GOLDEN=1`` to rewrite the expected files, then review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kairos import dsl
from tests.dsl.support import SCHEMA

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.stem for p in GOLDEN.iterdir() if p.suffix == ".kairos" or p.is_dir())


def _sources(case: str) -> list[tuple[str, str]]:
    path = GOLDEN / case
    if path.is_dir():
        return [(f"{case}/{f.name}", f.read_text(encoding="utf-8")) for f in sorted(path.glob("*.kairos"))]
    return [(f"{case}.kairos", path.with_suffix(".kairos").read_text(encoding="utf-8"))]


@pytest.mark.parametrize("case", CASES)
def test_error_output_matches_the_golden_file(case):
    with pytest.raises(dsl.CheckError) as info:
        dsl.compile_sources(_sources(case), SCHEMA)
    actual = str(info.value) + "\n"
    expected_path = GOLDEN / f"{case}.expected"
    if os.environ.get("KAIROS_UPDATE_GOLDEN") == "1":
        expected_path.write_text(actual, encoding="utf-8")
    assert expected_path.read_text(encoding="utf-8") == actual


def test_every_expected_file_has_a_case():
    assert sorted(p.stem for p in GOLDEN.glob("*.expected")) == CASES
