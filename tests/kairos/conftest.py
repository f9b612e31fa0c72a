"""The workspace the replay tests of this folder share: the scenarios and a reference folder."""

from __future__ import annotations

import pytest

from tests.kairos.test_workers import SCENARIOS


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / "s.kairos").write_text(SCENARIOS)
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "cells.csv").write_text("cell,area\nCBD-1,cbd\nCBD-2,cbd\n")
    return tmp_path
