"""Only \\n ends a line: a \\r inside a JSON line (in a string, or between tokens) leaves it one line."""

from __future__ import annotations

import io

from kairos.engine._replay import EventReader
from kairos.engine._workers import Router

T0 = 1_795_363_200_000
GOOD = b'{"type":"dpi","ts":%d,"msisdn":"13800000001","host":"h.cn","category":"video"}\n' % T0
CR_IN_STRING = b'{"type":"dpi","ts":%d,"msisdn":"13800000002","host":"h\rcn","category":"video"}\n' % T0
CR_BETWEEN_TOKENS = b'{"type":"dpi",\r"ts":%d,"msisdn":"13800000003","host":"h.cn","category":"video"}\n' % T0
TWO_VALUES = b'{"type":"login","ts":%d,"msisdn":"1"}\r{"type":"login","ts":%d,"msisdn":"2"}\n' % (T0, T0)
STREAM = GOOD + CR_IN_STRING + CR_BETWEEN_TOKENS + TWO_VALUES + b"{bad\n" + GOOD


def test_the_replay_reader_counts_a_line_with_a_carriage_return_once_and_numbers_the_rest_right():
    problems = []
    reader = EventReader(io.BytesIO(STREAM), problems.append)
    events = [ev.msisdn for ev in reader]
    assert ["13800000001", "13800000003", "13800000001"] == events  # \r between tokens is JSON whitespace
    assert (6, 3) == (reader.lines, reader.malformed)
    assert [2, 4, 5] == [p.line for p in problems]  # a raw \r in a string is one bad line, not two


def test_the_worker_router_numbers_lines_as_the_reader_does():
    router = Router(2)
    list(router.route(io.BytesIO(STREAM)))
    assert (6, 3, [2, 4, 5]) == (router.lines, router.malformed, [p.line for p in router.problems])
