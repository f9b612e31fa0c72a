"""Every form of LANGUAGE.md §1–§6 compiles into the expected plan structures."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kairos import dsl
from kairos import plan
from tests.dsl.support import SCHEMA, compile_one, scenario

EXAMPLES = Path(__file__).parent / "examples"  # the examples of LANGUAGE.md §1, §5 and §6, verbatim


def test_the_examples_of_the_language_reference_compile_verbatim():
    names = ("video_heavy_no_pack", "video_pack_call", "policy")
    compiled = dsl.compile_paths([EXAMPLES / f"{n}.kairos" for n in names], SCHEMA)
    first, second = compiled.scenarios
    assert (first.name, first.title, first.priority, first.cooldown_ms) == (
        "video_heavy_no_pack", "Heavy video use without a video pack", 60, 3_600_000
    )
    assert isinstance(first.pattern, plan.Aggregate)
    assert (first.pattern.kind, first.pattern.cmp, first.pattern.threshold, first.pattern.within_ms) == (
        "count", ">=", 20.0, 600_000
    )
    assert first.pattern.filter.where.text == 'category == "video"'
    assert first.audience.text == 'tags.video_pack != true and not msisdn in list("dual_sim")'
    assert first.lists == frozenset({"dual_sim"})
    (action,) = first.actions
    assert (action.channel, action.template, [k for k, _ in action.params]) == ("sms", "offer.video_pack", ["app"])
    assert isinstance(second.pattern, plan.Absence)
    assert (second.pattern.first.alias, second.pattern.absent.event_type, second.pattern.within_ms) == (
        "t", "feedback", 3 * 86_400_000
    )
    assert second.pattern.absent.reads_aliases is True
    assert second.pattern.first.reads_aliases is False
    at = str(EXAMPLES / "policy.kairos")
    assert compiled.policy == plan.Policy(
        origin=plan.Origin(at, 1, 1),
        exclude=("dnd", "blacklist"),
        caps=(plan.Cap("sms", 2, 86_400_000), plan.Cap("any", 3, 86_400_000)),
        quiet=(plan.Quiet(plan.TimeRange(22 * 60, 8 * 60), ("sms", "call"), "defer"),),
        arbitrate_ms=10_000,
        names=(plan.NameUse("list", "dnd", plan.Origin(at, 2, 16)),
               plan.NameUse("list", "blacklist", plan.Origin(at, 2, 29))),
    )
    assert compiled.files == tuple(str(EXAMPLES / f"{n}.kairos") for n in names)


def test_a_single_filter_is_a_single_pattern():
    s = scenario('scenario s\n  when balance as b where amount < 10\n  then sms "t"\nend\n')
    assert isinstance(s.pattern, plan.Single)
    f = s.pattern.filter
    assert (f.event_type, f.alias, f.where.text, f.origin) == (
        "balance", "b", "amount < 10", plan.Origin("t.kairos", 2, 8)
    )


def test_a_filter_without_where_has_none():
    s = scenario('scenario s when login then sms "t" end')
    assert s.pattern == plan.Single(plan.Filter("login", None, None, False, plan.Origin("t.kairos", 1, 17)))


def test_a_chain_of_three_steps_is_a_sequence_with_its_window():
    s = scenario("""
scenario s
  when dpi as d where category == "review"
       -> dpi where app == d.app
       -> attach within 5m
  then sms "t"
end
""")
    assert isinstance(s.pattern, plan.Sequence)
    assert [f.event_type for f in s.pattern.steps] == ["dpi", "dpi", "attach"]
    assert [f.reads_aliases for f in s.pattern.steps] == [False, True, False]
    assert s.pattern.within_ms == 300_000


def test_an_absence_binds_first_and_absent_filters():
    s = scenario('scenario s when sms as m -> not call where peer == m.peer within 1h then popup "t" end')
    assert isinstance(s.pattern, plan.Absence)
    assert (s.pattern.first.event_type, s.pattern.absent.event_type, s.pattern.within_ms) == ("sms", "call", 3_600_000)
    assert s.pattern.absent.where.python == "(e.peer == a[0].peer)"


@pytest.mark.parametrize("text, kind, value, cmp, threshold", [
    ("count(call where dropped) >= 3 within 1h", "count", None, ">=", 3.0),
    ("sum(dpi, bytes) > 1000000 within 10m", "sum", "bytes", ">", 1_000_000.0),
    ("distinct(location, cell) < 2 within 1d", "distinct", "cell", "<", 2.0),
    ("count(dpi) == 0 within 1s", "count", None, "==", 0.0),
    ("sum(balance as b, b.amount * 2) != -5 within 1m", "sum", "b.amount * 2", "!=", -5.0),
    ("sum(topup, amount) >= 0.5 within 1m", "sum", "amount", ">=", 0.5),
])
def test_aggregates_compile_with_kind_value_comparison_and_threshold(text, kind, value, cmp, threshold):
    p = scenario(f'scenario s when {text} then sms "t" end').pattern
    assert isinstance(p, plan.Aggregate)
    assert (p.kind, None if p.value is None else p.value.text, p.cmp, p.threshold) == (kind, value, cmp, threshold)


def test_an_aggregate_value_reads_the_filtered_event():
    p = scenario('scenario s when sum(dpi as d, d.bytes + bytes) >= 10 within 1m then sms "t" end').pattern
    assert p.value.python == "(e.bytes + e.bytes if e.bytes is not None else None)"


def test_dwell_keeps_its_areas_in_written_order_and_records_them():
    s = scenario('scenario s when dwell in area("t2", "t1") for 20m then sms "t" end')
    assert s.pattern == plan.Dwell(("t2", "t1"), 1_200_000)
    assert s.areas == frozenset({"t1", "t2"})


def test_clauses_may_come_in_any_order_and_fill_the_scenario():
    s = scenario("""
scenario data_90   # a comment
  then sms "offer.data" with {pct: u.pct, cycle: u.cycle} after 30s
       or popup "offer.data.app"
  once per u.cycle
  cooldown 1h
  during 08:00..22:00 on mon..fri, sun
  audience tags.plan == "basic"
  priority 70
  title "Data 90 %"
  when usage as u where crosses_above(pct, 90)
end
""")
    assert (s.title, s.priority, s.cooldown_ms, s.once, s.once_per.text) == (
        "Data 90 %", 70, 3_600_000, "per", "u.cycle"
    )
    assert s.during == plan.During((plan.TimeRange(480, 1320),), frozenset({1, 2, 3, 4, 5, 7}))
    assert [(a.channel, a.template, a.after_ms) for a in s.actions] == [
        ("sms", "offer.data", 30_000), ("popup", "offer.data.app", 0)
    ]
    assert [k for k, _ in s.actions[0].params] == ["pct", "cycle"]
    assert s.actions[0].origin == plan.Origin("t.kairos", 3, 8)
    assert s.tracked == frozenset({("usage", "pct")})
    assert s.origin == plan.Origin("t.kairos", 2, 1)


def test_defaults_when_optional_clauses_are_absent():
    s = scenario('scenario s when login then sms "t" end')
    assert (s.title, s.priority, s.audience, s.during, s.cooldown_ms, s.once, s.once_per) == (
        "", 50, None, None, None, "never", None
    )


def test_once_alone_is_at_most_one_trigger():
    assert scenario('scenario s when login once then sms "t" end').once == "once"


def test_the_version_hashes_the_scenario_text_from_scenario_to_end():
    text = '# lead\nscenario s\n  when login\n  then sms "t"\nend\n# tail\n'
    body = 'scenario s\n  when login\n  then sms "t"\nend'
    assert scenario(text).version == hashlib.sha256(body.encode()).hexdigest()[:16]


def test_lists_areas_and_previous_values_read_are_recorded():
    s = scenario("""
scenario s
  when location where in_area("airport", "t2") and changed(cell)
  audience msisdn in list("vip") and not msisdn in list("dnd")
  then sms "t"
end
""")
    assert (s.lists, s.areas, s.tracked) == (
        frozenset({"vip", "dnd"}), frozenset({"airport", "t2"}), frozenset({("location", "cell")})
    )


def test_action_parameters_keep_their_order_and_strings_decode_escapes():
    s = scenario(r'scenario s when login then sms "a\"b\\c\nd" with {z: 1, a: "x\"y"} end')
    (action,) = s.actions
    assert action.template == 'a"b\\c\nd'
    assert [(k, e.fn(None, (), None)) for k, e in action.params] == [("z", 1), ("a", 'x"y')]


def test_a_policy_with_several_caps_and_quiet_rules():
    p = compile_one("""
policy
  cap sms 1 per 1h
  cap sms 3 per 7d
  quiet 21:00..24:00 for popup drop
  quiet 00:00..07:00 for sms, call defer
  exclude list("a")
  exclude list("b"), list("c")
end
""").policy
    assert p.caps == (plan.Cap("sms", 1, 3_600_000), plan.Cap("sms", 3, 7 * 86_400_000))
    assert p.quiet == (
        plan.Quiet(plan.TimeRange(1260, 1440), ("popup",), "drop"),
        plan.Quiet(plan.TimeRange(0, 420), ("sms", "call"), "defer"),
    )
    assert (p.exclude, p.arbitrate_ms) == (("a", "b", "c"), None)


def test_scenarios_keep_load_order_across_files_and_files_are_listed():
    p = dsl.compile_sources(
        [("b.kairos", 'scenario z when login then sms "t" end'),
         ("a.kairos", 'scenario y when login then sms "t" end\nscenario x when login then sms "t" end')],
        SCHEMA,
    )
    assert [s.name for s in p.scenarios] == ["z", "y", "x"]
    assert p.files == ("b.kairos", "a.kairos")
    assert p.policy is None


def test_channels_come_from_the_caller():
    p = compile_one('scenario s when login then wechat "t" end', channels=frozenset({"wechat"}))
    assert p.scenarios[0].actions[0].channel == "wechat"


def test_compile_paths_reads_every_kairos_file_below_a_directory_sorted(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.kairos").write_text('scenario b when login then sms "t" end', encoding="utf-8")
    (tmp_path / "a.kairos").write_text('scenario a when login then sms "t" end', encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a scenario", encoding="utf-8")
    (tmp_path / "c.kairos").write_text('scenario c when login then sms "短信" end', encoding="utf-8")
    p = dsl.compile_paths([tmp_path], SCHEMA)
    assert [s.name for s in p.scenarios] == ["a", "c", "b"]
    assert p.files == tuple(str(tmp_path / f) for f in ("a.kairos", "c.kairos", "sub/b.kairos"))
    assert p.scenarios[1].actions[0].template == "短信"


def test_compile_paths_accepts_files_and_reports_them_by_path(tmp_path):
    f = tmp_path / "x.kairos"
    f.write_text('scenario x when lgin then sms "t" end', encoding="utf-8")
    with pytest.raises(dsl.CheckError) as info:
        dsl.compile_paths([str(f)], SCHEMA)
    (d,) = info.value.diagnostics
    assert (d.file, d.line, d.col) == (str(f), 1, 17)


def test_keywords_are_contextual_so_fields_may_share_their_names():
    s = scenario('scenario s when trigger where scenario == "x" and channel == "sms" then sms "t" end')
    assert s.pattern.filter.where.python == "((e.scenario == 'x') and (e.channel == 'sms'))"


def test_a_byte_order_mark_at_the_start_of_a_file_is_ignored(tmp_path):
    f = tmp_path / "bom.kairos"
    f.write_bytes('\ufeffscenario s when login then sms "t" end'.encode())
    assert [s.name for s in dsl.compile_paths([f], SCHEMA).scenarios] == ["s"]


def test_a_file_that_is_not_utf8_is_an_error_at_its_first_bad_byte(tmp_path):
    """A file saved as GBK (or Latin-1) is reported like any error, not with a traceback."""
    f = tmp_path / "gbk.kairos"
    f.write_bytes('scenario s\n  title "流量"\n  when login then sms "t" end\n'.encode("gbk"))
    with pytest.raises(dsl.CheckError) as info:
        dsl.compile_paths([f], SCHEMA)
    expected = (
        f"{f}:2:10: error: the file is not UTF-8 text: byte 0xc1 here does not start a valid UTF-8 "
        "character; save the file as UTF-8\n"
        '  title "\ufffd\ufffd\ufffd\ufffd"\n'
        "         ^"
    )
    assert expected == str(info.value)


def test_every_operator_scenario_of_the_domain_description_is_expressible():
    compiled = dsl.compile_paths([EXAMPLES / "operator_catalogue.kairos"], SCHEMA)
    kinds = {s.name: type(s.pattern).__name__ for s in compiled.scenarios}
    assert kinds == {
        "data_90": "Single", "low_balance": "Single", "hotline_call": "Single", "airport_dwell": "Dwell",
        "metro_rush_hour": "Single", "switched_on_abroad": "Single", "handset_review": "Sequence",
        "new_device": "Single", "heavy_video": "Aggregate", "first_data_use": "Single",
        "over_plan_again": "Sequence", "dropped_calls": "Aggregate", "competitor": "Aggregate",
        "silent_after_phone_change": "Absence", "wave_two": "Absence",
    }
