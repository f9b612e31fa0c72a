"""The daemon's engine has room in its calendar columns for its unit's subscribers before the first event:
no column doubles (every column copied at once, a stall of the stream) while they arrive (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kairos.engine import Reference
from tests.daemon.test_handover import _daemon_owning
from tests.engine.builders import column_growth
from tests.dsl.support import compile_one


def test_the_daemons_engine_reserves_its_references_subscribers_in_its_columns(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    grown = column_growth(monkeypatch)
    daemon = _daemon_owning(tmp_path, [0])
    plan = compile_one('scenario s\n  when dpi where count(dpi) in day(0) > 1 and since(dpi) < 1h\n'
                       '  then sms "t"\nend\n')
    daemon.new_engine(plan, Reference(tags={str(i): {} for i in range(5000)}))
    assert grown == [8192, 8192]  # both columns (the count's, the since's), once, before any event
