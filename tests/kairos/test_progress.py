"""Long commands show their progress on a terminal, and nothing extra anywhere else.

``kairos replay``, ``split`` and ``demo`` run here as a user runs them, in a process of their own, with
standard error on a pseudo-terminal (``pty``): the progress line (events, events/s, a percentage and the
time left) is drawn there. With standard error a pipe, as in CI logs, a command writes exactly its summary,
and does not even load the progress library.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

SCENARIO = """\
scenario low_balance
  when balance as b where amount < 10
  then sms "offer.topup" with {amount: b.amount}
end
"""
T0 = 1_795_363_200_000
#: enough lines for several of replay's blocks and of split's progress steps
LINES = 10_000
#: replay's summary line, its timing left out (it differs run to run)
SUMMARY = re.compile(r"kairos replay: 10,000 events, 0 malformed and 0 out-of-order lines skipped, 5,000 sends "
                     r"\(\d+\.\d\d s, [\d,]+ events/s\)\n")


def _events(path: Path) -> Path:
    path.write_text("".join(json.dumps({"type": "balance", "ts": T0 + i * 1000, "msisdn": str(i % 300),
                                        "amount": 5 + 10 * (i % 2)}) + "\n" for i in range(LINES)))
    return path


def _workspace(tmp_path: Path) -> Path:
    (tmp_path / "s.kairos").write_text(SCENARIO)
    _events(tmp_path / "day.jsonl")
    return tmp_path


def _kairos(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from kairos import main; sys.exit(main(sys.argv[1:]))", *args]


def _on_terminal(cmd: list[str], cwd: Path, both: bool = False) -> tuple[int, str, bytes]:
    """Run ``cmd`` with standard error on a pseudo-terminal; its status, what the terminal showed, and
    its standard output (a file, so nothing can block on it; ``both``: the terminal too)."""
    master, slave = pty.openpty()
    with open(cwd / "stdout", "wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=slave if both else out, stderr=slave)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the process closed the terminal's last writer
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return proc.wait(), shown.decode(), (cwd / "stdout").read_bytes()


def _drawn(cmd: list[str], cwd: Path) -> tuple[str, str, bytes]:
    """Run ``cmd`` on a terminal (``_on_terminal``); it must exit 0 having drawn progress: the last
    progress line drawn, what the terminal showed and its standard output."""
    status, shown, printed = _on_terminal(cmd, cwd)
    assert 0 == status, shown
    drawn = _progress_lines(shown)
    assert drawn, shown
    return drawn[-1], shown, printed


def _in_pipe(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, check=False, stdin=subprocess.DEVNULL)


def _screen(shown: str) -> list[str]:
    """What the terminal shows once the command is done: each line as its carriage returns left it."""
    lines = []
    for line in shown.replace("\r\n", "\n").split("\n"):
        cells: list[str] = []
        for part in line.split("\r"):  # each part is written from the line's start, over what was there
            cells[:len(part)] = part
        lines.append("".join(cells).rstrip())
    return lines


def _untimed(text: str) -> str:
    return re.sub(r"\(\d+\.\d\d s, [\d,]+ events/s\)", "(TIME)", text)


def _progress_lines(shown: str) -> list[str]:
    """The redraws of the progress line (each begins with a carriage return)."""
    return [part for part in shown.replace("\r\n", "\n").split("\r") if "/s" in part and "\n" not in part]


def test_replay_on_a_terminal_shows_events_their_rate_a_percentage_and_the_time_left(tmp_path):
    work = _workspace(tmp_path)
    last, shown, sends = _drawn(_kairos("replay", "--scenarios", "s.kairos", "--events", "day.jsonl",
                                        "--out", "sends.jsonl"), work)
    assert re.search(r"replay [\d,]+ events [\d,]+ events/s +\d+%\|.*\| \d\d:\d\d, ETA \d\d:\d\d", last), shown
    assert SUMMARY.search(shown.replace("\r\n", "\n")), shown  # the summary follows, on a cleared line
    assert b"" == sends


def test_replay_progress_never_reaches_the_sends_on_standard_output(tmp_path):
    work = _workspace(tmp_path)
    _, shown, sends = _on_terminal(_kairos("replay", "--scenarios", "s.kairos", "--events", "day.jsonl"), work)
    piped = _in_pipe(_kairos("replay", "--scenarios", "s.kairos", "--events", "day.jsonl"), work)
    assert _progress_lines(shown)
    assert piped.stdout == sends
    assert 5000 == sends.count(b"\n")


def test_replay_writing_its_sends_to_the_terminal_draws_no_progress_among_them(tmp_path):
    work = _workspace(tmp_path)
    status, shown, _ = _on_terminal(_kairos("replay", "--scenarios", "s.kairos", "--events", "day.jsonl"), work,
                                    both=True)
    assert 0 == status
    assert 5000 == shown.count('"scenario":"low_balance"')
    assert not re.search(r"events/s +\d+%\|", shown)


def test_replay_into_a_pipe_writes_only_its_summary_and_loads_no_progress_library(tmp_path):
    work = _workspace(tmp_path)
    run = [sys.executable, "-c", "import sys; from kairos import main; status = main(sys.argv[1:]); "
           "print('tqdm' in sys.modules); sys.exit(status)",
           "replay", "--scenarios", "s.kairos", "--events", "day.jsonl", "--out", "sends.jsonl"]
    done = _in_pipe(run, work)
    assert (0, b"False\n") == (done.returncode, done.stdout)
    assert SUMMARY.fullmatch(done.stderr.decode()), done.stderr


def test_replay_of_standard_input_from_a_pipe_shows_events_and_their_rate_without_a_percentage(tmp_path):
    work = _workspace(tmp_path)
    master, slave = pty.openpty()
    with open(work / "day.jsonl", "rb") as day:
        feed = subprocess.Popen(["cat"], stdin=day, stdout=subprocess.PIPE)
        proc = subprocess.Popen(_kairos("replay", "--scenarios", "s.kairos", "--events", "-", "--out", "sends.jsonl"),
                                cwd=work, stdin=feed.stdout, stdout=subprocess.DEVNULL, stderr=slave)
    assert feed.stdout is not None
    feed.stdout.close()
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert 0 == proc.wait() == feed.wait()
    drawn = _progress_lines(shown.decode())
    assert drawn
    assert all(re.fullmatch(r"replay [\d,]+ events [\d,]+ events/s \d\d:\d\d *", d) for d in drawn), drawn


def test_split_on_a_terminal_shows_lines_their_rate_and_a_percentage(tmp_path):
    work = _workspace(tmp_path)
    last, shown, _ = _drawn(_kairos("split", "--events", "day.jsonl", "--partitions", "2", "--out", "log"),
                            work)
    assert re.search(r"split [\d,]+ lines [\d,]+ lines/s +\d+%\|.*\| \d\d:\d\d, ETA \d\d:\d\d", last), shown
    assert "kairos split: 10,000 lines into 2 partitions" in shown


def test_split_into_a_pipe_writes_only_its_summary(tmp_path):
    work = _workspace(tmp_path)
    done = _in_pipe(_kairos("split", "--events", "day.jsonl", "--partitions", "2", "--out", "log"), work)
    assert 0 == done.returncode
    assert re.fullmatch(rb"kairos split: 10,000 lines into 2 partitions in log \(smallest [\d,]+, largest [\d,]+\)\n",
                        done.stderr), done.stderr


def test_demo_on_a_terminal_shows_the_replay_of_its_traffic(tmp_path):
    last, shown, printed = _drawn(_kairos("demo", "--subscribers", "50", "--hours", "6", "--examples", "1"),
                                  tmp_path)
    assert re.search(r"demo [\d,]+ events [\d,]+ events/s +\d+%\|", last), shown
    assert b"%|" not in printed and b"\r" not in printed  # the demo's own output (standard output) is untouched


def test_replay_on_a_terminal_leaves_the_screen_as_a_pipe_would_read_with_problems_on_lines_of_their_own(tmp_path):
    work = _workspace(tmp_path)
    lines = (work / "day.jsonl").read_text().splitlines(keepends=True)
    lines[4999] = "{oops\n"
    (work / "bad.jsonl").write_text("".join(lines))
    cmd = _kairos("replay", "--scenarios", "s.kairos", "--events", "bad.jsonl", "--out", "sends.jsonl")
    status, shown, _ = _on_terminal(cmd, work)
    piped = _in_pipe(cmd, work)
    assert 3 == status == piped.returncode
    assert _progress_lines(shown)
    assert _untimed(piped.stderr.decode()).splitlines() + [""] == [_untimed(line) for line in _screen(shown)]


def test_replay_on_two_workers_shows_the_progress_of_the_routed_input(tmp_path):
    work = _workspace(tmp_path)
    last, shown, _ = _drawn(_kairos("replay", "--scenarios", "s.kairos", "--events", "day.jsonl",
                                    "--out", "sends.jsonl", "--workers", "2"), work)
    assert re.search(r"replay [\d,]+ events [\d,]+ events/s +\d+%\|", last), shown


def test_replay_of_a_partitioned_log_shows_the_progress_of_all_its_partitions_on_one_and_two_workers(tmp_path):
    work = _workspace(tmp_path)
    assert 0 == _in_pipe(_kairos("split", "--events", "day.jsonl", "--partitions", "4", "--out", "log"),
                         work).returncode
    for workers in ("1", "2"):
        last, shown, _ = _drawn(_kairos("replay", "--scenarios", "s.kairos", "--events", "log",
                                        "--out", "sends.jsonl", "--workers", workers), work)
        assert re.search(r"replay [\d,]+ events [\d,]+ events/s +\d+%\|", last), shown
        assert SUMMARY.search(shown.replace("\r\n", "\n")), shown
