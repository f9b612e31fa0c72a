"""The vectorised JSON-lines formatter writes exactly the lines a per-event formatter would."""

from __future__ import annotations

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from kairos.traffic._jsonl import Fixed, Int, Table, Text, render

words = st.text(alphabet="abcxyz_.-0123456789", min_size=0, max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8 * 10**12), words, st.integers(-1, 10**15), words), min_size=1, max_size=40))
def test_lines_are_the_texts_and_numbers_in_order_and_minus_one_writes_nothing(rows):
    table = Table()
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    name = np.array([table.code(f'"name":"{r[1]}","n":') for r in rows], dtype=np.int32)
    n = np.array([r[2] for r in rows], dtype=np.int64)
    tail = np.array([table.code(f',"tail":"{r[3]}"}}\n') for r in rows], dtype=np.int32)
    out = render(len(rows), [Text(table.code('{"ts":'), table), Fixed(ts + 10**12, 13), Text(table.code(","), table),
                             Text(name, table), Int(n), Text(tail, table)])
    expected = []
    for t, w, v, z in rows:
        line = f'{{"ts":{t + 10**12},"name":"{w}","n":{"" if v < 0 else v},"tail":"{z}"}}\n'
        expected.append(line)
    assert "".join(expected).encode() == out


def test_numbers_are_written_in_shortest_form_and_zero_as_0():
    table = Table()
    values = np.array([0, 7, 10, 99, 100, 123456789012], dtype=np.int64)
    out = render(len(values), [Text(table.code('{"v":'), table), Int(values), Text(table.code("}\n"), table)])
    assert [orjson.loads(line)["v"] for line in out.splitlines()] == values.tolist()


def test_a_table_gives_one_code_per_distinct_text():
    table = Table()
    assert table.code("a") == table.code(b"a") != table.code("b")
    assert len(table) == 2
