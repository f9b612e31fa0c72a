"""Replay of a recorded JSON-lines file: bad lines are reported and skipped, output is stable."""

from __future__ import annotations

import io

import msgspec

from kairos.engine import Engine, replay
from kairos.engine._replay import BLOCK_BYTES
from kairos.plan import Plan, Single

from tests.engine.builders import flt, scenario

T0 = 1_795_363_200_000


def _plan():
    return Plan((scenario("b", Single(flt("dpi"))), scenario("a", Single(flt("dpi")))))


def _replay(lines: list[bytes]):
    out = io.BytesIO()
    problems = []
    report = replay(lambda sink: Engine(_plan(), sink=sink), io.BytesIO(b"".join(lines)), out,
                    on_problem=problems.append)
    return out.getvalue(), report, problems


def _dpi(ts: int, m: str = "1") -> bytes:
    return b'{"type":"dpi","ts":%d,"msisdn":"%s","host":"h"}\n' % (ts, m.encode())


def test_malformed_lines_are_reported_with_their_line_number_and_the_rest_is_processed():
    lines = [_dpi(T0), b'{"type":"dpi","ts":"soon","msisdn":"1","host":"h"}\n', b"not json\n",
             b'{"type":"teleport","ts":1,"msisdn":"1"}\n', b'{"type":"dpi","ts":5,"msisdn":"1"}\n',
             _dpi(T0 + 1)]
    out, report, problems = _replay(lines)
    assert [(p.line, p.reason) for p in problems] == [
        (2, "Expected `int`, got `str` - at `$.ts`"),
        (3, "JSON is malformed: invalid character (byte 4)"),
        (4, "unknown event type 'teleport' - at `$.type`"),
        (5, "Object missing required field `host`"),
    ]
    assert (report.events, report.malformed, report.sends) == (2, 4, 4)
    assert out.count(b"\n") == 4


def test_an_event_older_than_the_stream_time_is_reported_as_out_of_order():
    _, report, problems = _replay([_dpi(T0 + 5), _dpi(T0 + 1), _dpi(T0 + 6)])
    assert report.late == 1 and problems[0].line == 2 and "sorted by ts" in problems[0].reason


def test_sends_are_written_in_ts_then_id_order_as_json_lines():
    out, _, _ = _replay([_dpi(T0, "2"), _dpi(T0, "1"), _dpi(T0 + 1, "1")])
    rows = [msgspec.json.decode(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == [
        f"a:1:{T0}", f"a:2:{T0}", f"b:1:{T0}", f"b:2:{T0}", f"a:1:{T0 + 1}", f"b:1:{T0 + 1}"
    ]
    assert list(rows[0]) == ["id", "scenario", "msisdn", "ts", "send_at", "channel", "template", "params"]


def test_replay_output_is_byte_identical_across_runs_and_block_sizes():
    lines = [_dpi(T0 + i // 3, str(i % 7)) for i in range(3 * BLOCK_BYTES // 40)]
    lines.insert(len(lines) // 2, b"{broken\n")
    first, report, _ = _replay(lines)
    second, _, _ = _replay(lines)
    assert first == second
    assert report.malformed == 1 and report.events == len(lines) - 1


def test_blank_lines_are_ignored():
    _, report, problems = _replay([_dpi(T0), b"\n", b"   \n", _dpi(T0 + 1)])
    assert (report.events, problems) == (2, [])


def test_an_event_without_a_subscriber_is_malformed():
    """An empty msisdn names nobody: sending to it is impossible and its state would be shared."""
    out, report, problems = _replay([b'{"type":"dpi","ts":%d,"msisdn":"","host":"h"}\n' % T0, _dpi(T0 + 1)])
    assert [(1, "Expected `str` of length >= 1 - at `$.msisdn`")] == [(p.line, p.reason) for p in problems]
    assert (1, 1, 2) == (report.events, report.malformed, report.sends)


def test_an_event_time_outside_years_1970_to_9999_is_malformed():
    """A corrupted ts (seconds written as microseconds, a sign flip) must not move the stream's
    clock to the year 3 million, nor crash local-time rules: the line is refused."""
    lines = [_dpi(T0), b'{"type":"dpi","ts":100000000000000000,"msisdn":"1","host":"h"}\n',
             b'{"type":"dpi","ts":-5,"msisdn":"1","host":"h"}\n', _dpi(T0 + 1)]
    out, report, problems = _replay(lines)
    assert [2, 3] == [p.line for p in problems]
    assert "Expected `int` <= 253402214399999 - at `$.ts`" == problems[0].reason
    assert (2, 2, 4) == (report.events, report.malformed, report.sends)


def test_problems_are_reported_in_line_order_whatever_their_kind():
    """An out-of-order line is found when events are fed, a malformed one when they are decoded;
    the operator reading standard error still sees them in file order."""
    _, _, problems = _replay([_dpi(T0 + 5), _dpi(T0 + 1), b"not json\n", _dpi(T0 + 6)])
    assert [2, 3] == [p.line for p in problems]


def test_a_settler_takes_what_lives_out_of_the_collectors_walk_every_n_events():
    import gc

    from kairos.engine import Settler

    settler = Settler(every=10)
    gc.collect()
    before = gc.get_freeze_count()
    kept = [[i] for i in range(1_000)]  # containers the collector would walk
    settler.tick(9)
    assert gc.get_freeze_count() == before
    settler.tick(1)
    assert gc.get_freeze_count() >= before + len(kept)
    gc.unfreeze()


class _ReadOnly:
    """A stream with ``read`` alone (no ``readinto``), served in small pieces."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, size: int = -1) -> bytes:
        piece, self._data = self._data[:min(size, 7)], self._data[min(size, 7):]
        return piece


def _blocks_of(stream, size: int) -> list[bytes]:
    from kairos.engine._replay import line_views
    return [bytes(v) for v in line_views(stream, size)]


def test_line_views_cut_blocks_at_newlines_and_keep_a_line_longer_than_the_buffer_whole():
    data = b"a\n" + b"x" * 50 + b"\nbb\ncc"  # one line longer than the buffer, the last without newline
    blocks = _blocks_of(io.BytesIO(data), 8)
    assert b"".join(blocks) == data
    assert all(b.endswith(b"\n") for b in blocks[:-1]) and blocks[-1].endswith(b"cc")
    assert [line for b in blocks for line in b.splitlines()] == data.splitlines()  # no line cut in two


def test_line_views_read_a_stream_that_has_no_readinto():
    data = b"".join(_dpi(T0 + i) for i in range(20))
    blocks = _blocks_of(_ReadOnly(data), 64)
    assert b"".join(blocks) == data and all(b.endswith(b"\n") for b in blocks)


def test_replay_reads_lines_longer_than_a_block():
    long_host = "h" * (2 * BLOCK_BYTES)
    line = b'{"type":"dpi","ts":%d,"msisdn":"1","host":"%s"}\n' % (T0 + 1, long_host.encode())
    _, report, problems = _replay([_dpi(T0), line, _dpi(T0 + 2)])
    assert (report.events, report.lines, problems) == (3, 3, [])
