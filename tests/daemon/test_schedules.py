"""Schedule instants in the daemon (LANGUAGE.md §9.1): on event time, and on wall time when idle."""

from __future__ import annotations

import datetime as dt
import json
import signal
from zoneinfo import ZoneInfo

import pytest

from kairos._cli import main
from kairos._config import load_config
from kairos._daemon import Daemon
from kairos._units import ALL, unit_name
from kairos.adapters import FilePosition
from kairos.adapters._partitions import split
from kairos.adapters import partition_of
from kairos.engine import decode_snapshot
from kairos.engine.forms.schedule import Sweep
from tests.daemon.support import (log_offset, logged, sends, start, stop, wait_for, wait_for_progress,
                                  wait_until_done, wait_until_settled, write_config)

SH = ZoneInfo("Asia/Shanghai")
T0 = int(dt.datetime(2024, 5, 1, 9, tzinfo=SH).timestamp() * 1000)
H = 3_600_000


def _reference(folder, rows: dict[str, dict]) -> None:
    ref = folder / "ref"
    ref.mkdir(exist_ok=True)
    (ref / "tags.jsonl").write_text("".join(json.dumps({"msisdn": m, "tags": t}) + "\n" for m, t in rows.items()))


def _login(ts: int, m: str) -> str:
    return json.dumps({"type": "login", "ts": ts, "msisdn": m, "channel": "app"}) + "\n"


def test_an_instant_fires_on_event_time_for_tags_only_and_event_only_subscribers_in_msisdn_order(tmp_path):
    scenarios = """
scenario morning
  when every day at 10:00 where tags.x != 2
  then sms "morning"
end
"""
    _reference(tmp_path, {"13900000002": {"x": 1}, "13900000001": {"x": 2}, "13900000000": {}})
    config = write_config(tmp_path, scenarios, reference="ref")
    (tmp_path / "in" / "events.jsonl").write_text(_login(T0, "13800000005") + _login(T0 + 2 * H, "13800000009"))
    proc = start(config)
    try:
        # both events taken, the instant's sweep over, its sends delivered: a wrong fourth send (13800000009
        # came after the instant) would be out
        wait_until_done(tmp_path, proc, 0, events=2, idle=lambda: _no_sweep_published(config),
                        what="the 10:00 sends")
    finally:
        assert 0 == stop(proc)
    got = sends(tmp_path, ("sms",))
    ten = T0 + H
    assert [(s["msisdn"], s["ts"]) for s in sends(tmp_path, ("sms",))] == [
        ("13800000005", ten), ("13900000000", ten), ("13900000002", ten)]
    assert got[0]["id"] == f"morning:13800000005:{ten}"


def test_an_idle_daemon_fires_the_instant_on_wall_time(tmp_path):
    now = dt.datetime.now(SH)
    at = (now + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
    scenarios = f"""
scenario soon
  when every day at {at:%H:%M}
  then sms "soon"
end
"""
    config = write_config(tmp_path, scenarios, idle_advance=True)
    (tmp_path / "in" / "events.jsonl").write_text(_login(int(now.timestamp() * 1000), "13800000001"))
    proc = start(config)
    try:
        got = wait_for(lambda: sends(tmp_path, ("sms",)), timeout=120, what="the instant on wall time")
    finally:
        assert 0 == stop(proc)
    assert [(s["msisdn"], s["ts"]) for s in got] == [("13800000001", int(at.timestamp() * 1000))]


def _published_sweep(config, snapshots: dict[str, bytes]) -> Sweep | None:
    """The sweep under way in the snapshot file a restart would load (``Unit.load``'s choice), from ``snapshots``
    (path → content, read while the daemon could not write)."""
    path = str(load_config(config).snapshot_path)
    data = snapshots.get(path) or snapshots.get(path + ".prev")
    return None if data is None else decode_snapshot(data).engine.sweeps.get("morning")


def _snapshot_files(config) -> dict[str, bytes]:
    path = load_config(config).snapshot_path
    return {str(p): p.read_bytes() for p in (path, path.with_name(path.name + ".prev")) if p.exists()}


def _no_sweep_published(config) -> bool:
    """No snapshot a restart would load, the daemon's or a partition's, holds a sweep under way
    (``wait_until_done``'s ``idle``)."""
    cfg = load_config(config)
    for path in [cfg.snapshot_path, *sorted(cfg.partitions_dir.glob("*.bin"))]:
        data = _read(path) or _read(path.with_name(path.name + ".prev"))  # ``Unit.load``'s choice
        if data is not None and decode_snapshot(data).engine.sweeps:
            return False
    return True


def _read(path) -> bytes | None:
    """The file's content, or None if it is not there (a publishing daemon may have just moved it)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


MORNING = """
scenario morning
  when every day at 10:00 where tags.x != 2
  then sms "morning"
end
"""


EVERYONE = """
scenario morning
  when every day at 10:00
  then sms "morning"
end
"""


def _sweep_input(folder, n: int, scenarios: str = MORNING):
    """A daemon's folder over an instant that visits ``n`` tags-only rows (one in 50 passes ``where``: visits
    are the sweep's work, few sends keep delivery short), snapshots every 50 ms. Returns (config, rows,
    replay's sends over the same input)."""
    rows = {f"139{i:08d}": {"x": 1 if i % 50 == 0 else 2} for i in range(n)}
    _reference(folder, rows)
    config = write_config(folder, scenarios, reference="ref", interval_s=0.05)
    events = _login(T0, "13800000001") + _login(T0 + 2 * H, "13800000001")
    (folder / "in" / "events.jsonl").write_text(events)
    expected = sorted(_decided(json.loads(x)) for x in _replayed(folder, events))
    assert len(expected) == n // 50 + 1
    return config, rows, expected


def _frozen_mid_sweep(folder, config, proc, *, left: int) -> dict[str, bytes] | None:
    """Wait, snapshot by snapshot, until the snapshot a restart would load holds the sweep under way with
    some members visited and at least ``left`` still to visit: at each snapshot the daemon reports it is
    frozen (SIGSTOP: nothing is published while it stands) and its files are read. Returns those files, the
    daemon left frozen; or None, the daemon running again, if the sweep got past that point between two
    snapshots."""
    while True:
        seen = len(logged(folder, "snapshot taken"))
        wait_for_progress(folder, proc, 0, snapshots=seen + 1, events=0, input_done=lambda: False,
                          what="the next snapshot")
        proc.send_signal(signal.SIGSTOP)
        files = _snapshot_files(config)
        sweep = _published_sweep(config, files)
        if sweep is not None and sweep.done > 0 and len(sweep.members) - sweep.done >= left:
            return files  # some visited (a restart that started over would show), some left
        if (sweep is not None and len(sweep.members) - sweep.done < left) or (
                sweep is None and decode_snapshot(next(iter(files.values()))).engine.now > T0 + H):
            proc.send_signal(signal.SIGCONT)
            return None  # the sweep went past ``left`` (or began and ended) between two snapshots
        proc.send_signal(signal.SIGCONT)


def _at_some_size(tmp_path, attempt, failure: str):
    """``attempt(folder, n)`` with 200 000 rows, then 1 000 000 if it returned None (a machine fast enough to
    get past the point it waits for between two snapshots); (its folder, what it returned). The test fails if
    both returned None."""
    for n in (200_000, 1_000_000):
        folder = tmp_path / str(n)
        folder.mkdir()
        got = attempt(folder, n)
        if got is not None:
            return folder, got
    pytest.fail(failure)


def _killed_mid_sweep(folder, n: int):
    """``_sweep_input``'s daemon SIGKILLed once the snapshot a restart would load holds the sweep under way.
    Returns (config, rows, the files at the kill, replay's sends), or None if the whole sweep fell between two
    snapshots."""
    config, rows, expected = _sweep_input(folder, n)
    proc = start(config)
    try:
        files = _frozen_mid_sweep(folder, config, proc, left=1)
        if files is None:
            return None
        proc.kill()
        proc.wait(10)
        return config, rows, files, expected
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            assert 0 == stop(proc)


def _resumed_after_restart(folder, config, rows: dict[str, dict], saved: Sweep) -> None:
    """Restart the daemon whose sweep stood at ``saved`` in the snapshot it loads, let it finish, and check it
    went on from there: it decided only for the members ``saved`` had not visited (some of them again after a
    crash: sent before the kill, after the snapshot, the outbox drops those), never the whole sweep again
    (the outbox would hide that from the sends)."""
    since = log_offset(folder)
    proc = start(config)
    try:
        wait_until_done(folder, proc, since, events=0, idle=lambda: _no_sweep_published(config), timeout=300,
                        what="the rest of the sweep")
    finally:
        assert 0 == stop(proc)
    (stopped,) = logged(folder, "stopped", since)
    left = set(saved.members[saved.done:]) - set(saved.caught)
    assert stopped["sends"] + stopped["repeated_decisions_dropped"] == sum(rows.get(m, {}).get("x") != 2 for m in left)


def test_a_crash_mid_sweep_resumes_the_sweep_from_the_snapshot_and_sends_each_subscriber_once(tmp_path):
    # the kill point is what the daemon wrote (a snapshot holding the sweep under way), never a time; a machine
    # fast enough to sweep 200 000 rows between two snapshots gets five times as many, then the test fails
    folder, (config, rows, files, expected) = _at_some_size(
        tmp_path, _killed_mid_sweep,
        "every sweep began and ended between two snapshots: no restart mid-sweep was tested")
    # the restart loaded a file read at the kill (nothing was published after it), the sweep under way in it
    since = log_offset(folder)
    saved = _published_sweep(config, files)
    _resumed_after_restart(folder, config, rows, saved)
    (loaded,) = logged(folder, "snapshot loaded", since)
    assert decode_snapshot(files[loaded["path"]]).engine.sweeps["morning"] == saved
    assert saved.done > 0  # chosen so (``_frozen_mid_sweep``): a restart that started over would show
    # every subscriber once, as replay sends
    got = sends(folder, ("sms",))
    assert len({s["id"] for s in got}) == len(got) and sorted(_decided(s) for s in got) == expected


def test_a_sweep_interleaved_with_events_decides_what_replay_decides(tmp_path):
    n = 30_000
    scenarios = """
scenario morning
  when every day at 10:00 where tags.x != 2
  then sms "morning"
end
"""
    _reference(tmp_path, {f"139{i:08d}": {"x": 1} for i in range(n)})
    events = [_login(T0, "13800000001")]
    t = T0 + H
    for k in range(3_000):  # after the instant: tags flipped all over the msisdn range while the sweep runs
        t += 10
        m = f"139{(k * 7_919) % n:08d}"
        events.append(json.dumps({"type": "profile", "ts": t, "msisdn": m, "tags": {"x": 2}}) + "\n")
    config = write_config(tmp_path, scenarios, reference="ref")
    (tmp_path / "in" / "events.jsonl").write_text("".join(events))
    replayed = tmp_path / "replay.jsonl"
    assert 0 == main(["replay", "--scenarios", str(tmp_path / "scenarios" / "s.kairos"), "--events",
                      str(tmp_path / "in" / "events.jsonl"), "--reference", str(tmp_path / "ref"),
                      "--out", str(replayed), "--quiet"])
    expected = sorted(json.loads(x)["id"] for x in replayed.read_text().splitlines())
    assert len(expected) == n + 1  # at 10:00 nobody was flipped yet
    proc = start(config)
    try:
        # every tag change taken, the sweep over, its sends delivered: a wrong send would be out
        wait_until_done(tmp_path, proc, 0, events=len(events), idle=lambda: _no_sweep_published(config),
                        what="the sweep")
    finally:
        assert 0 == stop(proc)
    assert sorted(s["id"] for s in sends(tmp_path, ("sms",))) == expected


POLICED = """
scenario morning
  when every day at 10:00 where tags.x != 2
  then sms "morning"
end

policy
  arbitrate 1m
end
"""
PARTS = 4


def _sentinels(t: int) -> list[str]:
    """One login per partition at ``t``: every partition's time passes what replay's single time passes."""
    out, seen = [], set()
    for i in range(1000):
        m = f"9{i:03d}"
        if partition_of(m, PARTS) not in seen:
            seen.add(partition_of(m, PARTS))
            out.append(_login(t, m))
    assert len(seen) == PARTS
    return out


def _replayed(folder, events: str) -> list[str]:
    (folder / "replay.jsonl").unlink(missing_ok=True)
    (folder / "all.jsonl").write_text(events)
    assert 0 == main(["replay", "--scenarios", str(folder / "scenarios" / "s.kairos"), "--events",
                      str(folder / "all.jsonl"), "--reference", str(folder / "ref"),
                      "--out", str(folder / "replay.jsonl"), "--quiet"])
    return sorted(x for x in (folder / "replay.jsonl").read_text().splitlines())


def _decided(s: dict) -> str:
    """A send as replay writes it (the file channel adds the rendered text)."""
    return json.dumps({k: v for k, v in s.items() if k != "text"}, sort_keys=True)


@pytest.mark.parametrize("partitioned", [False, True], ids=["one unit", "four partitions"])
def test_tags_only_subscribers_held_by_the_policy_at_the_instant_get_replays_sends(tmp_path, partitioned):
    # every row is visited once, by the unit owning it: a partition visiting another's rows would send twice
    rows = {f"139{i:08d}": {"x": 2 if i % 5 == 0 else 1} for i in range(200)}
    _reference(tmp_path, rows)
    # each partition keeps its own time, armed at its first event: every one has an event before the instant
    events = "".join([*_sentinels(T0), _login(T0, "13800000001"), _login(T0 + 2 * H, "13800000002"),
                      *_sentinels(T0 + 3 * H)])
    if partitioned:
        src = (f'[[sources]]\nkind = "partitioned"\npath = "log"\npartitions = {PARTS}\n'
               f"owned = {list(range(PARTS))}\npoll_ms = 20\n")
        config = write_config(tmp_path, POLICED, sources=src, reference="ref")
        config.write_text(config.read_text().replace("[snapshot]\n", '[snapshot]\npartitions_dir = "parts"\n'))
        split([x.encode() for x in events.splitlines(keepends=True)], tmp_path / "log", PARTS)
    else:
        config = write_config(tmp_path, POLICED, reference="ref")
        (tmp_path / "in" / "events.jsonl").write_text(events)
    expected = [_decided(json.loads(x)) for x in _replayed(tmp_path, events)]
    assert len(expected) == 160 + 1 + PARTS  # the tags-only rows whose x is not 2, and those seen before 10:00
    proc = start(config)
    try:
        # every event taken in every partition, the sweeps over, their sends delivered: a repeated send
        # would be out
        wait_until_done(tmp_path, proc, 0, events=len(events.splitlines()),
                        idle=lambda: _no_sweep_published(config), what="the 10:00 sends")
    finally:
        assert 0 == stop(proc)
    assert sorted(_decided(s) for s in sends(tmp_path, ("sms",))) == sorted(expected)


def _cleanly_stopped_mid_sweep(folder, n: int):
    """``_sweep_input``'s daemon (with the contact policy) stopped cleanly while the snapshot it published
    holds the sweep under way with half of it or more left: frozen there (``_frozen_mid_sweep``), sent SIGTERM
    and then SIGCONT, so it handles the signal as soon as it runs. Returns (config, rows, the snapshot the stop
    wrote, replay's sends), or None if the sweep got that far between two snapshots or ended before the stop."""
    config, rows, expected = _sweep_input(folder, n, POLICED)
    proc = start(config)
    try:
        if _frozen_mid_sweep(folder, config, proc, left=n // 2) is None:
            return None
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGCONT)
        assert 0 == proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            assert 0 == stop(proc)
    assert logged(folder, "snapshot taken")[-1]["reason"] == "shutdown"
    written = _snapshot_files(config)[str(load_config(config).snapshot_path)]
    saved = decode_snapshot(written).engine.sweeps.get("morning")
    if saved is None:
        return None  # the sweep ended before the stop took effect
    assert 0 < saved.done < len(saved.members)
    return config, rows, written, expected


def test_a_clean_stop_mid_sweep_neither_loses_nor_repeats_a_subscriber_after_restart(tmp_path):
    # the stop point is what the daemon published (a snapshot holding the sweep under way, half of it or more
    # left), never a time; a machine fast enough to get past it between two snapshots, or to finish the sweep
    # before the stop, gets five times as many rows, then the test fails
    folder, (config, rows, written, expected) = _at_some_size(
        tmp_path, _cleanly_stopped_mid_sweep, "every sweep got past half before a snapshot held it, or ended "
        "before the stop: no stop mid-sweep was tested")
    # the restart loaded the snapshot the stop wrote and went on from the sweep in it
    since = log_offset(folder)
    saved = decode_snapshot(written).engine.sweeps["morning"]
    _resumed_after_restart(folder, config, rows, saved)
    (loaded,) = logged(folder, "snapshot loaded", since)
    assert loaded["path"] == str(load_config(config).snapshot_path)
    # every subscriber once, as replay sends
    got = sends(folder, ("sms",))
    assert len({s["id"] for s in got}) == len(got) and sorted(_decided(s) for s in got) == expected


@pytest.mark.parametrize("partitioned", [False, True], ids=["one unit", "four partitions"])
def test_each_units_schedules_visit_exactly_its_own_tag_rows_and_the_subscribers_of_its_events(tmp_path, partitioned):
    rows = {f"139{i:08d}": {} for i in range(100)}
    _reference(tmp_path, rows)
    seen = [f"138{i:08d}" for i in range(20)]
    if partitioned:
        src = (f'[[sources]]\nkind = "partitioned"\npath = "log"\npartitions = {PARTS}\n'
               f"owned = {list(range(PARTS))}\npoll_ms = 20\n")
        config = write_config(tmp_path, POLICED, sources=src, reference="ref")
        config.write_text(config.read_text().replace("[snapshot]\n", '[snapshot]\npartitions_dir = "parts"\n'))
        (tmp_path / "log").mkdir()
    else:
        config = write_config(tmp_path, POLICED, reference="ref")
    daemon = Daemon(load_config(config))  # its units opened, never run: nothing to stop
    for m in seen:
        unit = unit_name(partition_of(m, PARTS)) if partitioned else ALL
        daemon.ingest("log" if partitioned else "file", _login(T0, m).encode(), FilePosition("p", 0, 0, 1), unit)
    members = {name: u.engine.universe.members() for name, u in daemon.units.items()}
    if partitioned:
        assert members == {unit_name(p): sorted(m for m in [*rows, *seen] if partition_of(m, PARTS) == p)
                           for p in range(PARTS)}
    else:
        assert members == {ALL: sorted([*rows, *seen])}


def _partitioned(folder, scenarios: str = MORNING):
    """A daemon owning the four partitions of an embedded partitioned log in ``folder``/log."""
    src = (f'[[sources]]\nkind = "partitioned"\npath = "log"\npartitions = {PARTS}\n'
           f"owned = {list(range(PARTS))}\npoll_ms = 20\n")
    config = write_config(folder, scenarios, sources=src, reference="ref")
    config.write_text(config.read_text().replace("[snapshot]\n", '[snapshot]\npartitions_dir = "parts"\n'))
    (folder / "log").mkdir(exist_ok=True)
    return config


def _late_partitions_stream() -> tuple[str, str]:
    """The stream's first event, at 09:00 in one partition, and the rest: every other partition's first event
    comes at 11:00, after the 10:00 instant the stream passed."""
    first = _login(T0, "13800000001")
    p0 = partition_of("13800000001", PARTS)
    later = [_login(T0 + 2 * H, "13800000001")] + [x for x in _sentinels(T0 + 2 * H)
                                                     if partition_of(json.loads(x)["msisdn"], PARTS) != p0]
    return first, "".join(later)


def _append(folder, events: str) -> None:
    split([x.encode() for x in events.splitlines(keepends=True)], folder / "log", PARTS)


def test_partitions_whose_first_events_come_after_an_instant_decide_what_replay_decides(tmp_path):
    # a partition arms its schedules from the stream's start, not from its own first event: the 10:00 instant
    # the stream passed before these partitions' first events visits their tags-only subscribers too
    _reference(tmp_path, {f"139{i:08d}": {"x": 2 if i % 5 == 0 else 1} for i in range(200)})
    config = _partitioned(tmp_path)
    first, later = _late_partitions_stream()
    expected = _replayed(tmp_path, first + later)
    assert len(expected) == 160 + 1  # the tags-only rows whose x is not 2, and the one seen before 10:00
    _append(tmp_path, first)
    proc = start(config)
    try:
        # the stream begins before the rest of it is written: the daemon has taken its first event
        wait_for_progress(tmp_path, proc, 0, snapshots=1, events=1, input_done=lambda: True, what="the first event")
        since = log_offset(tmp_path)
        _append(tmp_path, later)
        wait_until_settled(tmp_path, proc, since, what="the rest of the stream")
    finally:
        assert 0 == stop(proc)
    assert sorted(_decided(s) for s in sends(tmp_path, ("sms",))) == [_decided(json.loads(x)) for x in expected]


def test_a_restart_arms_partitions_seen_for_the_first_time_from_the_stream_start_it_saved(tmp_path):
    _reference(tmp_path, {f"139{i:08d}": {"x": 2 if i % 5 == 0 else 1} for i in range(200)})
    config = _partitioned(tmp_path)
    first, later = _late_partitions_stream()
    expected = _replayed(tmp_path, first + later)
    _append(tmp_path, first)
    proc = start(config)
    try:
        wait_for_progress(tmp_path, proc, 0, snapshots=1, events=1, input_done=lambda: True, what="the first event")
    finally:
        assert 0 == stop(proc)
    # restarted: the partitions without events yet know the stream's start only from the snapshots
    _append(tmp_path, later)
    since = log_offset(tmp_path)
    proc = start(config)
    try:
        wait_until_settled(tmp_path, proc, since, what="the rest of the stream")
    finally:
        assert 0 == stop(proc)
    assert sorted(_decided(s) for s in sends(tmp_path, ("sms",))) == [_decided(json.loads(x)) for x in expected]


def test_a_unit_arms_from_the_earliest_time_an_engine_of_the_daemon_took_also_after_a_reload(tmp_path):
    # an event refused (too far ahead of the wall clock) sets nothing
    _reference(tmp_path, {f"139{i:08d}": {"x": 2} for i in range(40)})  # visited, none sent: no outbox runs
    config = _partitioned(tmp_path)
    daemon = Daemon(load_config(config))  # its units opened, never run: nothing to stop
    p0 = partition_of("13800000001", PARTS)
    late = next(p for p in range(PARTS) if p != p0)
    m_late = next(f"9{i:03d}" for i in range(1000) if partition_of(f"9{i:03d}", PARTS) == late)
    far = int(dt.datetime(2100, 1, 1, tzinfo=SH).timestamp() * 1000)  # refused: far ahead of the wall clock
    daemon.ingest("log", _login(far, m_late).encode(), FilePosition("p", 0, 0, 1), unit_name(late))
    assert daemon.future == 1 and daemon.stream_start.began is None
    daemon.ingest("log", _login(T0, "13800000001").encode(), FilePosition("p", 0, 0, 1), unit_name(p0))
    assert daemon.stream_start.began == T0
    unit = daemon.units[unit_name(late)]
    # a reload's engine for this unit, which has seen no event yet, arms from the start too
    (tmp_path / "scenarios" / "s.kairos").write_text(MORNING.replace('"morning"', '"morning" with {v: 2}'))
    before = unit.engine
    assert daemon.reloader.reload("test").changed == ["morning"] and unit.engine is not before
    daemon.ingest("log", _login(T0 + 2 * H, m_late).encode(), FilePosition("p", 0, 0, 1), unit_name(late))
    while unit.sweeping:  # the turns the daemon's sweep task takes
        unit.sweep()
    (schedule,) = unit.engine.schedules
    # the 10:00 instant, passed before this partition's first event, visited its tags-only rows
    rows = [m for m in (f"139{i:08d}" for i in range(40)) if partition_of(m, PARTS) == late]
    assert (schedule.instants, schedule.visited, schedule.next) == (1, len(rows), T0 + 25 * H)
    assert daemon.stream_start.began == T0  # a later first event does not move the start
