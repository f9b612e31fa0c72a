"""The shared capacity store: places of a channel's period granted exactly once over processes and crashes."""

from __future__ import annotations

import multiprocessing
import os

from kairos.adapters import GrantFolder, read_grants

DAY = 86_400_000
END = 20_000 * DAY  # the end of period 19 999 of one day (the store takes it as given)


def _take_many(folder: str, worker: int, start: multiprocessing.Barrier) -> None:
    grants = GrantFolder(folder)
    start.wait()
    for period in range(40):
        for i in range(10):
            grants.take("call", 1, period, END, 5, f"s:{worker}:{period}:{i}")


def test_four_processes_racing_for_five_places_a_period_get_exactly_five_each_id_once(tmp_path):
    """Forty periods, each raced for by four processes with ten ids apiece. (Without the lock, about
    one period in ten got six places or more: the read and the append of two processes interleave.)"""
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(4)
    procs = [ctx.Process(target=_take_many, args=(str(tmp_path), w, start)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [0, 0, 0, 0] == [p.exitcode for p in procs]
    periods = read_grants(tmp_path).values()
    assert [(5, 5)] * 40 == [(len(ids), len(set(ids))) for ids in periods]


def test_a_trigger_granted_once_finds_its_place_again_and_takes_no_second(tmp_path):
    grants = GrantFolder(tmp_path)
    assert grants.take("call", 1, 19_999, END, 2, "a")
    assert grants.take("call", 1, 19_999, END, 2, "a")
    assert grants.take("call", 1, 19_999, END, 2, "b")
    assert not grants.take("call", 1, 19_999, END, 2, "c")
    assert grants.take("call", 1, 19_999, END, 2, "a")  # full, but "a" holds a place
    assert ["a", "b"] == read_grants(tmp_path)[f"call.1d.19999.{END}"]


def test_after_a_crash_a_new_store_on_the_folder_knows_every_grant(tmp_path):
    before = GrantFolder(tmp_path)
    assert before.take("call", 1, 19_999, END, 2, "a")
    after = GrantFolder(tmp_path)  # the process died; another opens the folder
    assert after.take("call", 1, 19_999, END, 2, "a")
    assert (1, 0) == (after.found, after.grants)
    assert after.take("call", 1, 19_999, END, 2, "b")
    assert not after.take("call", 1, 19_999, END, 2, "c")
    assert not before.take("call", 1, 19_999, END, 2, "d")  # the other store reads what was appended since


def test_a_line_torn_by_a_crash_keeps_its_place_and_the_next_grant_starts_a_line(tmp_path):
    grants = GrantFolder(tmp_path)
    assert grants.take("call", 1, 19_999, END, 3, "a")
    path = tmp_path / f"call.1d.19999.{END}.grants"
    with open(path, "ab") as f:
        f.write(b"half-writ")  # killed in the middle of a write
    again = GrantFolder(tmp_path)
    assert again.take("call", 1, 19_999, END, 3, "b")
    assert not again.take("call", 1, 19_999, END, 3, "c")  # the torn line counts: never more than the limit
    assert ["a", "half-writ", "b"] == read_grants(tmp_path)[f"call.1d.19999.{END}"]


def test_channels_and_period_lengths_count_apart(tmp_path):
    grants = GrantFolder(tmp_path)
    assert grants.take("call", 1, 19_999, END, 1, "a")
    assert grants.take("sms", 1, 19_999, END, 1, "b")
    assert grants.take("call", 7, 2_857, END, 1, "c")
    assert grants.take("call", 1, 20_000, END + DAY, 1, "d")
    assert not grants.take("call", 1, 19_999, END, 1, "e")


def test_a_periods_file_is_deleted_once_it_ended_more_than_the_kept_time_before_the_latest(tmp_path):
    grants = GrantFolder(tmp_path, keep_ms=2 * DAY)
    for day in range(5):
        assert grants.take("call", 1, 19_999 + day, END + day * DAY, 1, f"t{day}")
    # the latest period ends at END + 4 days: those that ended before END + 2 days are gone
    assert sorted(read_grants(tmp_path)) == [f"call.1d.{19_999 + d}.{END + d * DAY}" for d in (2, 3, 4)]


def test_a_forked_process_opens_its_own_files(tmp_path):
    """The parent's descriptors are not the child's: a store made before a fork (``--workers``) still locks."""
    grants = GrantFolder(tmp_path)
    assert grants.take("call", 1, 19_999, END, 2, "parent")
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=lambda: os._exit(0 if grants.take("call", 1, 19_999, END, 2, "child") else 1))
    child.start()
    child.join()
    assert 0 == child.exitcode
    assert not grants.take("call", 1, 19_999, END, 2, "late")
    assert ["parent", "child"] == read_grants(tmp_path)[f"call.1d.19999.{END}"]


def test_a_channel_name_that_is_not_a_file_name_is_escaped(tmp_path):
    grants = GrantFolder(tmp_path)
    assert grants.take("../x y", 1, 19_999, END, 1, "a")
    assert [f"%2e%2e%2fx%20y.1d.19999.{END}"] == list(read_grants(tmp_path))


def test_any_trigger_id_is_one_line_and_found_again(tmp_path):
    """A trigger id holds the msisdn, which may hold anything: a newline, a backslash, a lone surrogate."""
    odd = ["a:1\n2:5", "a:1\\n2:5", "a:\\:5", "a:\ud800:5"]
    grants = GrantFolder(tmp_path)
    assert all(grants.take("call", 1, 19_999, END, 4, t) for t in odd)
    again = GrantFolder(tmp_path)
    assert all(again.take("call", 1, 19_999, END, 4, t) for t in odd)
    assert not again.take("call", 1, 19_999, END, 4, "e")
    assert [odd] == list(read_grants(tmp_path).values())
