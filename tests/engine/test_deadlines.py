"""The deadline queue gives entries back in exactly (when, seq) order, as a heap would."""

from __future__ import annotations

import heapq

from hypothesis import given, settings
from hypothesis import strategies as st

from kairos.engine._deadlines import NEVER, Deadlines

# (when, pops before time t) steps: pushes interleaved with draining up to a time
steps = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 5_000)),
        st.tuples(st.just("drain"), st.integers(0, 5_000)),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(steps, st.sampled_from([1, 7, 1_000, 60_000]))
def test_entries_come_out_in_when_then_seq_order_like_a_heap(ops, width):
    q = Deadlines(width)
    heap: list[tuple[int, int, int, str]] = []
    got, want = [], []
    for seq, (op, x) in enumerate(ops):
        if op == "push":
            q.push(x, seq, seq % 3, f"m{seq}")
            heapq.heappush(heap, (x, seq, seq % 3, f"m{seq}"))
        else:
            while (entry := q.pop_before(x)) is not None:
                got.append(entry)
            while heap and heap[0][0] < x:
                want.append(heapq.heappop(heap))
        assert q.floor <= (heap[0][0] if heap else NEVER)  # never later than the earliest entry
    assert got == want
    assert sorted(q) == sorted(heap) and len(q) == len(heap)


def test_an_entry_pushed_into_a_bucket_being_drained_still_comes_out_in_order():
    q = Deadlines(1_000)
    q.push(1_100, 1, 0, "a")
    q.push(1_900, 2, 0, "b")
    assert q.pop_before(1_500) == (1_100, 1, 0, "a")  # opens bucket 1
    q.push(1_200, 3, 0, "c")  # earlier than b, into the opened bucket
    assert [q.pop_before(2_000), q.pop_before(2_000), q.pop_before(2_000)] == [
        (1_200, 3, 0, "c"), (1_900, 2, 0, "b"), None]


def test_an_owner_past_16_bits_widens_its_bucket_and_comes_back_whole():
    q = Deadlines(60_000)
    q.push(61_000, 1, 3, "a")
    q.push(61_000, 2, 70_000, "b")  # an owner index beyond 65535
    q.push(119_999, 3, 4, "c")  # the bucket's last millisecond
    assert sorted(q) == [(61_000, 1, 3, "a"), (61_000, 2, 70_000, "b"), (119_999, 3, 4, "c")]
    assert [q.pop_before(200_000) for _ in range(4)] == [
        (61_000, 1, 3, "a"), (61_000, 2, 70_000, "b"), (119_999, 3, 4, "c"), None]


def test_a_bucket_wider_than_a_16_bit_offset_is_refused():
    import pytest

    with pytest.raises(ValueError, match="65536"):
        Deadlines(65_537)
