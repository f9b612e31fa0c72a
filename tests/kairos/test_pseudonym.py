"""The log's pseudonyms: keyed hashes of subscribers' numbers wherever a record carries one."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from kairos._daemon import configure_logging
from kairos._pseudonym import ENV_KEY, TEXT_CAP, Pseudonymiser, pseudonym_key

M = "79161234567"
P = Pseudonymiser(b"k")


def record(**fields):
    return P(None, "warning", {"event": "x", **fields})


def test_the_same_number_has_the_same_pseudonym_under_one_key_and_another_under_another():
    assert P.of(M) == Pseudonymiser(b"k").of(M) != Pseudonymiser(b"other").of(M)
    assert P.of(M).startswith("~") and M not in P.of(M)


def test_numbers_ids_and_lists_of_ids_are_replaced_and_everything_else_kept():
    out = record(msisdn=M, peer=int(M), id=f"review_shop:{M}:1700000000000:2", ids=[f"a:{M}:5"],
                 channel="sms", ts=1700000000000, host="127.0.0.1:8787")
    assert out == {"event": "x", "msisdn": P.of(M), "peer": P.of(M), "id": f"review_shop:{P.of(M)}:1700000000000:2",
                   "ids": [f"a:{P.of(M)}:5"], "channel": "sms", "ts": 1700000000000, "host": "127.0.0.1:8787"}


def test_a_raw_json_line_keeps_its_shape_with_its_numbers_replaced():
    line = json.dumps({"type": "sms", "ts": 1, "msisdn": M, "peer": "79160000000", "direction": "up"})
    assert json.loads(record(line=line)["line"]) == {"type": "sms", "ts": 1, "msisdn": P.of(M),
                                                      "peer": P.of("79160000000"), "direction": "up"}


def test_a_line_that_is_not_json_loses_the_number_pairs_and_every_long_digit_run():
    assert record(line=f'{{"type":"dpi","msisdn":"{M}","by')["line"] == f'{{"type":"dpi","msisdn":"{P.of(M)}","by'
    assert record(line=f"{M},dpi,42")["line"] == f"{P.of(M)},dpi,42"


def test_an_error_text_loses_trigger_ids_and_quoted_numbers_but_not_limits_or_places_in_files():
    error = f"trigger_id 'x:{M}' is wrong; s.kairos:2:18: error; see review:{M}:17; got \"{M}\""
    assert record(error=error)["error"] == (f"trigger_id 'x:{P.of(M)}' is wrong; s.kairos:2:18: error; "
                                            f"see review:{P.of(M)}:17; got \"{P.of(M)}\"")
    limit = "Expected `int` <= 1000000000000000 - at `$.bytes`"
    assert limit == record(error=limit)["error"]


def test_the_key_comes_from_the_environment_before_the_configuration_else_it_is_random(monkeypatch):
    monkeypatch.setenv(ENV_KEY, "from-env")
    assert (b"from-env", "environment") == pseudonym_key("from-config")
    monkeypatch.delenv(ENV_KEY)
    assert (b"from-config", "configuration") == pseudonym_key("from-config")
    key, origin = pseudonym_key("")
    assert ("random", 32) == (origin, len(key)) and key != pseudonym_key("")[0]


# --- the reviewer's gaps (issue 12 item 8) ---------------------------------------------------------------------------

def unlinked(out) -> str:
    """A record as the log would write it, for looking for numbers in it."""
    return json.dumps(out, default=repr)


def test_a_bad_json_line_loses_a_number_under_any_key_at_any_depth_and_keeps_its_ts():
    lines = [{"type": "dpi", "ts": 1700000000000, "MSISDN": M, "host": "h"},  # bad because `msisdn` is missing
             {"type": "dpi", "ts": 1700000000000, "msisdn": {"n": M}},
             {"type": "dpi", "ts": 1700000000000, "to": [int(M)], "at": 79161234567.0, M: "key", "note": f"call {M}"}]
    for line in lines:
        out = json.loads(record(line=json.dumps(line))["line"])
        assert M not in json.dumps(out) and P.of(M) in json.dumps(out), out
        assert (1700000000000, "dpi") == (out["ts"], out["type"])
    assert {"type": "dpi", "ts": 1700000000000, "MSISDN": P.of(M), "host": "h"} == json.loads(
        record(line=json.dumps(lines[0]))["line"])
    assert {"n": 42, "host": "m.ru", "bytes": 123456} == json.loads(  # short numbers stay readable
        record(line=json.dumps({"n": 42, "host": "m.ru", "bytes": 123456}))["line"])


def test_only_an_epoch_ms_under_ts_stays_readable_in_a_json_line():
    line = json.dumps({"ts": int(M), "sent": 1700000000000, "x": {"ts": "1700000000000"}})
    out = json.loads(record(line=line)["line"])
    assert {"ts": P.of(M), "sent": P.of("1700000000000"), "x": {"ts": "1700000000000"}} == out


def test_a_line_cut_at_the_logged_length_loses_the_digits_at_its_edge_however_few():
    cut = ("x" * 194 + "," + M)[:200]  # 5 digits of the number left at the edge
    out = record(line=cut)["line"]
    assert out == "x" * 194 + ",<cut>" and cut[-5:] not in out
    assert record(line=b"\xd0\x96" * 97 + b"," + M.encode()[:5])["line"].endswith(",<cut>")  # 200 bytes, 103 chars
    assert "7916,dpi,42" == record(line="7916,dpi,42")["line"]  # a short line is whole: its digits are not cut
    assert f"{P.of(M)},dpi,{P.of('1700000000000')}" == record(line=f"{M},dpi,1700000000000")["line"]


def test_bytes_are_read_as_text_with_the_same_rules():
    journal = json.dumps({"id": f"review:{M}:1700000000000:1", "msisdn": M, "channel": "sms"}).encode()
    assert M not in unlinked(record(line=journal))
    assert M not in unlinked(record(line=journal[:40]))  # an unreadable journal line, as the outbox logs it
    assert M not in unlinked(record(error=b"got '" + M.encode() + b"'", id=f"a:{M}:1".encode(), msisdn=M.encode()))
    assert P.of(M) == record(msisdn=M.encode())["msisdn"]


class Odd:
    def __repr__(self) -> str:
        return f"Odd(msisdn='{M}', id='r:{M}:17')"


class Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_the_processor_never_raises_and_what_it_cannot_read_is_written_unloggable():
    cyclic: list = []
    cyclic.append(cyclic)
    out = record(msisdn=10**5000, peer=None, id=b"r:" + M.encode() + b":17", line=b"\xff\xfe" + M.encode(),
                 ratio=1.5, nested={"a": [{"msisdn": M, "b": (f"r:{M}:1", {f"msisdn={M}"})}]}, obj=Odd(),
                 hostile=Hostile(), cyclic=cyclic,
                 flag=True, nothing=None, big=10**40, neg=-3)
    assert M not in unlinked(out)
    assert ("<unloggable>", None, 1.5, True, None, 10**40, -3) == (
        out["msisdn"], out["peer"], out["ratio"], out["flag"], out["nothing"], out["big"], out["neg"])
    assert ("<unloggable>", "<unloggable>") == (out["hostile"], out["cyclic"])
    assert P.of(M) in out["obj"] and "msisdn=" in out["obj"]
    assert {"event": "<unloggable>"} == P(None, "info", None)  # a record that is no mapping at all


@pytest.fixture
def daemon_logging(capsys):
    """configure_logging as the daemon does, writing to the captured standard error; undone afterwards."""
    factory = logging.getLogRecordFactory()
    yield lambda: capsys.readouterr().err
    logging.setLogRecordFactory(factory)
    structlog.reset_defaults()


def test_a_traceback_loses_the_numbers_in_it_but_keeps_its_places_in_files(daemon_logging):
    configure_logging("info", pseudonymise=True, key="k")
    log = structlog.get_logger("test")
    try:
        raise ValueError(f"no route for {M} of trigger 'r:{M}:1700000000000'")
    except ValueError as e:
        log.exception("reload refused", error="see the traceback")
        log.warning("channel failed", exc_info=e)
    written = [json.loads(x) for x in daemon_logging().splitlines()]
    assert 2 == len(written) and M not in json.dumps(written)
    for w in written:
        assert f'File "{__file__}", line ' in w["exception"] and f"r:{P.of(M)}:1700000000000" in w["exception"]
        assert f"no route for {P.of(M)}" in w["exception"]


def test_third_party_stdlib_logging_loses_numbers_and_pdus(daemon_logging):
    from aiosmpplib.log import TRACE, StructuredLogger

    configure_logging("info", pseudonymise=True, key="k")
    stream = io.StringIO()
    esme = StructuredLogger("esme-test", TRACE, handler=logging.StreamHandler(stream))  # as aiosmpplib's ESME makes it
    pdu = bytes.fromhex("0000003a00000004") + b"\x01\x01" + M.encode() + b"\x00\x01\x01" + M.encode() + b"\x00"
    esme.trace("Sending message", pdu=pdu.hex())
    esme.error("SMPP message could not be sent", message={"destination_addr": {"number": M}, "log_id": f"r:{M}:17:1"})
    esme.trace("Raw", blob=pdu.hex().upper())
    try:
        raise KeyError(M)
    except KeyError:
        esme.exception("Unable to parse PDU")
    kafka = logging.getLogger("aiokafka.test")  # a library's logger in the hierarchy, with any handler
    kafka.addHandler(logging.StreamHandler(stream))
    try:
        kafka.warning("peer %s went away", M)
    finally:
        kafka.handlers.clear()
    written = stream.getvalue()
    assert M not in written and M.encode().hex() not in written.lower()
    assert "Sending message" in written and "<redacted>" in written and f"r:{P.of(M)}:17:1" in written
    assert f"peer {P.of(M)} went away" in written and "Traceback" in written
    configure_logging("info", pseudonymise=False)
    assert logging.getLogRecordFactory() is logging.LogRecord


# --- hostile texts: linear time, bounded size, readable paths ---------------------------------------------------------
# Sizes where the former patterns took minutes to hours (cubic hex dumps, quadratic long words); the figures are
# measured by hand, not asserted: finishing with the right result is what these tests prove.

def test_a_long_hex_dump_of_digits_is_redacted_and_other_hex_kept():
    dump = "31" * 30_000  # 30 000 ASCII digits as hex, under the cap
    assert "data <redacted> end" == P.foreign(f"data {dump} end")
    assert f"data {P.of(dump)}z" == P.foreign(f"data {dump}z")  # glued to a letter: no hex token, but a digit run
    assert "ucs <redacted>" == P.foreign("ucs " + "".join(f"003{d}" for d in M))
    assert "ok deadbeef 313233 cafe" == P.foreign("ok deadbeef 313233 cafe")  # 3 digits, or none: kept


def test_a_long_word_is_read_in_one_pass_and_digits_glued_to_it_are_still_replaced():
    word = "a" * 30_000  # two of them under the cap
    assert f"KeyError: '{word}'" == record(error=f"KeyError: '{word}'")["error"]
    assert f"{word}{P.of(M)} and {word}" == record(exception=f"{word}{M} and {word}")["exception"]
    assert f"x review:{P.of(M)}:1700000000000 and {word}{P.of(M)}" == P.traceback(  # an id's ts stays readable
        f"x review:{M}:1700000000000 and {word}{M}")


def test_every_text_is_cut_to_the_cap_as_a_cut_line_so_a_number_cut_in_two_is_dropped():
    head = "x" * (TEXT_CAP - len("<cut>") - 5)
    out = record(exception=head + M + "y" * 1000, error=head + M, line=(head + M).encode(), note="y" * 10**6)
    assert {"exception": head + "<cut>", "error": head + "<cut>", "line": head + "<cut>"} == {
        k: out[k] for k in ("exception", "error", "line")}
    assert out["note"] == "y" * (TEXT_CAP - len("<cut>")) + "<cut>"
    wide = record(error="ж" * TEXT_CAP)["error"]  # 2 bytes a character: cut at a whole character
    assert wide.endswith("ж<cut>") and len(wide.encode()) <= TEXT_CAP
    assert P.foreign("z" * 10**6).endswith("z<cut>") and len(P.foreign("z" * 10**6)) == TEXT_CAP
    assert "short " + M[:5] == record(note="short " + M[:5])["note"]  # a whole text keeps its short numbers


def test_a_quoted_file_path_stays_readable_in_errors_and_tracebacks_and_quoted_numbers_do_not():
    missing = "[Errno 2] No such file or directory: '/data/snap/unit-20261204.snap'"
    assert missing == record(error=missing)["error"] == record(exception=f"Traceback\n{missing}")["exception"][10:]
    assert "bad 'unit-20261204.snap'" == record(error="bad 'unit-20261204.snap'")["error"]
    assert f"can't read {P.of(M)} in \"{P.of(M)}\"" == P.traceback(f"can't read {M} in \"{M}\"")
    assert f"got '{P.of(M)}'" == record(error=f"got '{M}'")["error"]
    assert f"to '{P.of(M)}@sms.ru', 'tel:{P.of(M)}.x'" == record(error=f"to '{M}@sms.ru', 'tel:{M}.x'")["error"]
