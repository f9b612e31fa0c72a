"""The log's pseudonyms: keyed hashes of subscribers' numbers wherever a record carries one."""

from __future__ import annotations

import json

from kairos._pseudonym import ENV_KEY, Pseudonymiser, pseudonym_key

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
