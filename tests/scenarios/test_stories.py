"""The catalogue's stories, written as ``kairos test`` files beside it (``scenarios/tests/``), all pass.

Each ``NAME.test.toml`` there replays ``NAME.events.jsonl`` through the whole
catalogue (its contact policy left out) and lists the sends expected and the
triggers expected to be stopped, with the reason. The variations of a story
(a near miss, another subscriber) stay in this folder's pytest files.
"""

from __future__ import annotations

from kairos import main
from tests.scenarios.support import EVENTS


def test_every_story_beside_the_catalogue_passes_kairos_test(capsys):
    status = main(["test", str(EVENTS)])
    out = capsys.readouterr().out
    tests = sorted(EVENTS.glob("*.test.toml"))
    assert (status, out.count("\nok ") + out.startswith("ok "), "FAILED" in out) == (0, len(tests), False), out
    assert len(tests) >= 25
