"""The floor (``w1-floor``, ``w2-floor``): the same input decoded into the engine's own events, nothing else."""

from __future__ import annotations

import pytest

from bench._contenders import floor
from kairos import traffic
from kairos.engine import use_catalogue


@pytest.fixture(autouse=True)
def _no_catalogue_left():
    yield
    use_catalogue([])  # the types a test's catalogue registered leave with it


def test_the_floor_decodes_every_event_of_the_input(tmp_path):
    path = tmp_path / "w1.jsonl"
    traffic.write(path, subscribers=50, events=3_000, hours=1, seed=2, mix="w1")
    m = floor("w1-floor", path, [])
    assert (m.contender, m.events, m.sends) == ("w1-floor", 3_000, 0)


def test_the_floor_decodes_the_event_types_the_scenarios_catalogue_declares(tmp_path):
    folder = tmp_path / "vouchers"
    folder.mkdir()
    (folder / "events.toml").write_text('[voucher_redeemed]\namount = {type = "number", min = 0}\ncode = "string"\n')
    (folder / "big.kairos").write_text(
        'scenario big\n  when voucher_redeemed where amount > 10\n  then sms "offer.thanks"\nend\n')
    events = tmp_path / "e.jsonl"
    voucher = '{{"type": "voucher_redeemed", "ts": {}, "msisdn": "1", "amount": 5, "code": "A"}}\n'
    dpi = '{"type": "dpi", "ts": 200, "msisdn": "1", "host": "a.example"}\n'
    events.write_text("".join(voucher.format(t) for t in range(1, 101)) + dpi)
    assert floor("w2-floor", events, [str(folder / "big.kairos")]).events == 101
