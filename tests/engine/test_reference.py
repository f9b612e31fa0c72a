"""The reference data folder (LANGUAGE.md §7) as operators deliver it, and its errors.

Files come from spreadsheets and warehouse exports: blank lines, Windows line
endings and a byte-order mark at the start are ordinary and must not change
what is read; a broken line is refused with the file and line named.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kairos.engine import Reference, ReferenceError
from kairos.engine._reference import KnowledgeBase

BOM = "\ufeff"


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    return tmp_path


def _error(tmp_path: Path, files: dict[str, str]) -> str:
    with pytest.raises(ReferenceError) as info:
        Reference.load(_folder(tmp_path, files))
    return str(info.value)


def test_every_file_is_read_into_its_lookup(tmp_path):
    ref = Reference.load(_folder(tmp_path, {
        "cells.csv": "cell,area\nc1,airport_t1\nc1,airport\nc2,stadium\n",
        "tags.jsonl": '{"msisdn": "138", "tags": {"plan_type": "prepaid", "churn": 0.8}}\n',
        "lists/dnd.txt": "139\n# a comment\n140\n",
        "kb.csv": "pattern,app,category\niqiyi.com,iqiyi,video\n",
    }))
    assert frozenset({"airport_t1", "airport"}) == ref.areas("c1")
    assert {"plan_type": "prepaid", "churn": 0.8} == ref.tags["138"]
    assert frozenset({"139", "140"}) == ref.lists["dnd"]
    assert ("iqiyi", "video") == ref.kb.label("www.iqiyi.com")


def test_blank_lines_and_windows_line_endings_read_the_same(tmp_path):
    ref = Reference.load(_folder(tmp_path, {
        "cells.csv": "cell,area\r\n\r\nc1,airport\r\n",
        "tags.jsonl": '{"msisdn": "138", "tags": {"a": 1}}\r\n\r\n{"msisdn": "139", "tags": {}}\r\n',
        "lists/dnd.txt": "139\r\n\r\n140\r\n",
        "kb.csv": "pattern,app,category\r\n\r\niqiyi.com,iqiyi,video\r\n",
    }))
    assert frozenset({"airport"}) == ref.areas("c1")
    assert {"138": {"a": 1}, "139": {}} == ref.tags
    assert frozenset({"139", "140"}) == ref.lists["dnd"]
    assert ("iqiyi", "video") == ref.kb.label("iqiyi.com")


def test_a_byte_order_mark_at_the_start_of_a_file_is_ignored(tmp_path):
    """Excel and Notepad write one; on a list it must not hide the first number."""
    ref = Reference.load(_folder(tmp_path, {
        "cells.csv": BOM + "cell,area\nc1,airport\n",
        "tags.jsonl": BOM + '{"msisdn": "138", "tags": {"a": 1}}\n',
        "lists/dnd.txt": BOM + "139\n140\n",
        "kb.csv": BOM + "pattern,app,category\niqiyi.com,iqiyi,video\n",
    }))
    assert frozenset({"airport"}) == ref.areas("c1")
    assert {"138": {"a": 1}} == ref.tags
    assert frozenset({"139", "140"}) == ref.lists["dnd"]
    assert ("iqiyi", "video") == ref.kb.label("iqiyi.com")


def test_a_cells_file_without_the_area_column_names_the_header_line(tmp_path):
    expected = f"{tmp_path / 'cells.csv'}:1: expected the header cell,area"
    assert expected == _error(tmp_path, {"cells.csv": "cell\nc1\n"})


def test_a_cells_row_missing_its_area_names_the_line(tmp_path):
    expected = f"{tmp_path / 'cells.csv'}:3: expected 2 columns (cell,area), got 1"
    assert expected == _error(tmp_path, {"cells.csv": "cell,area\nc1,airport\nc2\n"})


def test_a_malformed_tags_line_names_the_line(tmp_path):
    expected = f"{tmp_path / 'tags.jsonl'}:3: Object missing required field `tags`"
    assert expected == _error(tmp_path, {"tags.jsonl": '{"msisdn": "1", "tags": {}}\n\n{"msisdn": "2"}\n'})


@pytest.mark.parametrize("name, text, line", [
    ("cells.csv", "cell,area\nc1,airport\nc2,caf\xe9\n", 3),
    ("tags.jsonl", '{"msisdn": "1", "tags": {"name": "caf\xe9"}}\n', 1),
    ("lists/dnd.txt", "139\n\xe9140\n", 2),
    ("kb.csv", "pattern,app,category\nx.com,caf\xe9,video\n", 2),
])
def test_a_file_that_is_not_utf8_names_the_line(tmp_path, name, text, line):
    """A file exported as GBK or Latin-1 is refused with its line, not with a traceback."""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("latin-1"))
    expected = f"{path}:{line}: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    with pytest.raises(ReferenceError) as info:
        Reference.load(tmp_path)
    assert expected == str(info.value)


def test_a_missing_folder_is_an_error_naming_it(tmp_path):
    expected = f"{tmp_path / 'nope'}: reference folder does not exist"
    with pytest.raises(ReferenceError) as info:
        Reference.load(tmp_path / "nope")
    assert expected == str(info.value)


def test_the_first_pattern_in_file_order_that_the_host_ends_with_labels_it():
    kb = KnowledgeBase([("qq.com", "qq", "social"), ("video.qq.com", "tencent_video", "video")])
    assert ("qq", "social") == kb.label("v.video.qq.com")


def test_ends_with_is_meant_literally_so_a_pattern_matches_inside_a_label():
    """LANGUAGE.md §7 says "ends with": xiqiyi.com ends with iqiyi.com. Write ``.iqiyi.com``
    for subdomains only."""
    kb = KnowledgeBase([("iqiyi.com", "iqiyi", "video"), (".qq.com", "qq", "social")])
    assert [("iqiyi", "video"), ("qq", "social"), None] == [
        kb.label("xiqiyi.com"), kb.label("im.qq.com"), kb.label("qq.com")
    ]
