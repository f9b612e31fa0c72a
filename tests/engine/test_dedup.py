"""Duplicate events (an at-least-once feed): identical events within the window are skipped, the rest kept."""

from __future__ import annotations

from hashlib import blake2b

import msgspec

from kairos.engine import event_union
from kairos.engine._dedup import Dedup, DedupState

T0 = 1_795_363_200_000
_decode = msgspec.json.Decoder(event_union()).decode


def dpi(ts: int, m: str = "13800000001", category: str = "video", raw: bytes | None = None):
    return _decode(raw or b'{"type":"dpi","ts":%d,"msisdn":"%s","host":"h.cn","category":"%s"}'
                   % (ts, m.encode(), category.encode()))


def test_an_identical_event_is_skipped_and_counted_and_others_at_the_same_time_are_kept():
    d = Dedup(60_000)
    events = [dpi(T0), dpi(T0), dpi(T0, m="13800000002"), dpi(T0, category="news"), dpi(T0)]
    kept, skipped = d.split(events)
    assert ([0, 2, 3], [1, 4], 2) == ([events.index(e) for e in kept], skipped, d.duplicates)


def test_whitespace_key_order_and_ignored_fields_do_not_make_a_line_a_new_event():
    d = Dedup(60_000)
    first = dpi(T0)
    again = dpi(T0, raw=b'{ "category":"video",\r"host":"h.cn" , "msisdn":"13800000001","ts":%d,'
                        b'"type":"dpi","extra":1}' % T0)
    assert ([first], [1]) == d.split([first, again])


def test_a_repeat_within_the_window_is_skipped_and_one_past_it_is_kept():
    d = Dedup(60_000)
    d.split([dpi(T0)])
    assert [1] == d.split([dpi(T0 + 30_000, m="13800000002"), dpi(T0)])[1]  # 30 s later: remembered
    d.split([dpi(T0 + 200_000, m="13800000002")])  # the window moves past T0
    assert [] == d.split([dpi(T0)])[1]
    assert 0 < len(d) <= 2  # what is older than the window and a bucket is forgotten


def test_a_caller_that_judges_lateness_first_gets_late_copies_back_unjudged():
    d = Dedup(60_000)
    d.split([dpi(T0)], late_from=-1)
    kept, skipped = d.split([dpi(T0)], late_from=T0 + 1)  # older than the stream's time: the engine's late
    assert (1, []) == (len(kept), skipped)
    assert [1] == d.split([dpi(T0 + 1, m="13800000002"), dpi(T0 + 1, m="13800000002")], late_from=T0 + 1)[1]
    assert 1 == d.duplicates


def test_the_memory_survives_a_snapshot_round_trip_even_under_another_window():
    d = Dedup(60_000)
    d.split([dpi(T0), dpi(T0 + 20_000)])
    state = msgspec.msgpack.decode(msgspec.msgpack.encode(d.state()), type=DedupState)
    for window in (60_000, 10_000, 600_000):
        again = Dedup(window)
        again.restore(state)
        assert [0] == again.split([dpi(T0 + 20_000), dpi(T0 + 20_001)])[1]


def test_a_copy_arriving_right_after_a_restore_is_skipped_and_a_new_event_is_not():
    d = Dedup(60_000)
    d.split([dpi(T0)])
    restored = Dedup(60_000)
    restored.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(d.state()), type=DedupState))
    assert [0] == restored.split([dpi(T0)])[1]
    assert ([], [0]) == (restored.split([dpi(T0, category="news")])[1], restored.split([dpi(T0, category="news")])[1])
    again = Dedup(60_000)  # a second snapshot keeps what was restored and what came since
    again.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(restored.state()), type=DedupState))
    assert [0, 1] == again.split([dpi(T0), dpi(T0, category="news"), dpi(T0, category="music")])[1]
    again.split([dpi(T0 + 200_000, m="13800000002")])  # the window moves past T0: the restored memory goes too
    assert ([], 1) == (again.split([dpi(T0)])[1], len(again))  # only the newest event is remembered


def test_a_snapshot_keeps_each_identity_as_the_blake2b_digest_of_the_events_msgpack_encoding():
    # what snapshots written before (and by other processes) hold: their identities must keep matching
    event = dpi(T0)
    digest = blake2b(msgspec.msgpack.encode(event), digest_size=8).digest()
    d = Dedup(60_000)
    d.split([event])
    assert [[digest]] == list(d.state().buckets.values())
    restored = Dedup(60_000)
    restored.restore(DedupState(60_000, 7_500, T0, {T0 // 7_500: [digest]}))
    assert [0] == restored.split([dpi(T0), dpi(T0 + 1)])[1]
