"""``kairos demo``'s example sends read in time order, and a deferred one says so and why.

A generated day (seed 3) holds a ``data_90`` SMS triggered at 07:44 that the
policy's quiet hours (22:00..08:00 for sms) hold until 08:00.
"""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from kairos._cli import main
from kairos._compile import compile_plan
from kairos._demo_report import deferral_text
from kairos.engine import LocalTime, Send

T0 = 1_795_363_200_000  # Monday 2026-11-23 00:00 Asia/Shanghai
MINUTE = 60_000


@pytest.fixture(scope="module")
def demo_text() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert 0 == main(["demo", "--subscribers", "400", "--hours", "24", "--seed", "3", "--examples", "5"])
    return out.getvalue()


def test_the_demo_prints_its_example_sends_in_time_order(demo_text):
    examples = demo_text.split("Example sends", 1)[1]
    times = re.findall(r'^  (\d\d:\d\d:\d\d)  (?:sms|popup|call) "', examples, re.M)
    assert len(times) == 5
    assert sorted(times) == times


def test_a_send_held_by_quiet_hours_says_it_was_deferred_to_when_and_why(demo_text):
    assert re.search(r'^  08:00:00  sms "offer\.data_addon" to \d+   \[data_90\]\n.*\n'
                     r"      deferred to 08:00:00 from its trigger at 07:\d\d:\d\d "
                     r"\(quiet hours 22:00\.\.08:00 for sms\)$",
                     demo_text, re.M)


def test_the_demo_table_shares_have_one_decimal_and_no_space_before_the_percent_sign(demo_text):
    shares = re.findall(r"\(([^()]*%)\)", demo_text.split("Example sends", 1)[0])
    assert shares and all(re.fullmatch(r"<?\d+\.\d%", s) for s in shares), shares


def test_a_send_moved_by_after_and_then_by_quiet_hours_names_both(tmp_path):
    (tmp_path / "s.kairos").write_text('scenario low\n  when balance where amount < 10\n'
                                       '  then sms "offer.topup" after 1m\nend\n')
    (tmp_path / "p.kairos").write_text("policy\n  quiet 22:00..08:00 for sms defer\nend\n")
    plan = compile_plan([tmp_path / "s.kairos", tmp_path / "p.kairos"])
    clock = LocalTime("Asia/Shanghai")

    def send(ts: int, send_at: int) -> Send:
        return Send(f"low:1:{ts}", "low", "1", ts, send_at, "sms", "offer.topup", {})

    assert [
        "",
        "deferred to 12:01:00 from its trigger at 12:00:00 (after 1m)",
        "deferred to 08:00:00 from its trigger at 00:00:00 (after 1m, then quiet hours 22:00..08:00 for sms)",
    ] == [deferral_text(plan, send(T0, T0), clock),
          deferral_text(plan, send(T0 + 720 * MINUTE, T0 + 721 * MINUTE), clock),
          deferral_text(plan, send(T0, T0 + 480 * MINUTE), clock)]
