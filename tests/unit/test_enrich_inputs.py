"""The apigw_enrich spider's input readers: formats, bad records and their line numbers."""

from __future__ import annotations

import io

from scrapy_apigw.settings import DEFAULT_INPUT_FIELDS
from scrapy_apigw.spiders.inputs import BadLine, _json_list, detect_format, read_tracks


def rows(text: str, fmt: str):
    return list(read_tracks(io.StringIO(text), fmt, DEFAULT_INPUT_FIELDS))


def bad(result):
    return [(line, row.reason) for line, row in result if isinstance(row, BadLine)]


def good(result):
    return [(line, row) for line, row in result if not isinstance(row, BadLine)]


JSONL = (
    '{"artist": "A", "title": "One"}\n'
    "\n"
    '{"artist": "B", "title": \n'  # line 3: broken
    "[1, 2]\n"  # line 4: not an object
    '{"isrc": "GBAAA9900303"}\n'  # line 5: an identifier is enough
    '{"artist": "C"}\n'  # line 6: nothing to look up
)


def test_jsonl_lines_and_bad_lines_with_their_numbers():
    result = rows(JSONL, "jsonl")
    assert good(result) == [
        (1, {"artist": "A", "title": "One"}),
        (5, {"isrc": "GBAAA9900303"}),
    ]
    assert [line for line, _ in bad(result)] == [3, 4, 6]
    reasons = dict(bad(result))
    assert reasons[3].startswith("invalid JSON")
    assert reasons[4] == "a JSON list, not an object"
    assert reasons[6] == "no artist and title, nor a spotify_id or an isrc"


def test_csv_rows_report_the_line_they_start_on():
    text = (
        "artist,title,isrc\n"
        "A,One,\n"
        'B,"Two\nlines",GB1\n'  # lines 3-4: a quoted newline
        "C,Three,X,extra\n"  # line 5: 4 fields
        "D\n"  # line 6: 1 field
        "E,Five,\n"  # line 7
    )
    result = rows(text, "csv")
    assert good(result) == [
        (2, {"artist": "A", "title": "One"}),
        (3, {"artist": "B", "title": "Two\nlines", "isrc": "GB1"}),
        (7, {"artist": "E", "title": "Five"}),
    ]
    assert bad(result) == [(5, "4 field(s), the header has 3"), (6, "1 field(s), the header has 3")]


def test_json_list_elements_with_lines_and_a_broken_one_skipped():
    text = (
        "[\n"
        '{"artist": "A", "title": "One"},\n'
        '{"artist": "B", "title": oops},\n'  # line 3: broken
        '{"artist": "C", "title": "Three"},\n'
        '"just a string",\n'  # line 5
        '{"artist": "D", "title": "Four"}\n'
        "]\n"
    )
    result = rows(text, "json")
    assert [(line, row["title"]) for line, row in good(result)] == [
        (2, "One"),
        (4, "Three"),
        (6, "Four"),
    ]
    assert [line for line, _ in bad(result)] == [3, 5]


def test_json_list_read_across_many_buffers_keeps_line_numbers():
    n = 5000  # ~200 KB: several 64 KiB chunks, elements cut at chunk ends
    body = ",\n".join(f'{{"artist": "Artist {i}", "title": "Title {i}"}}' for i in range(n))
    result = list(_json_list(io.StringIO("[\n" + body + "\n]")))
    assert len(result) == n
    assert result[0] == (2, {"artist": "Artist 0", "title": "Title 0"})
    assert result[-1] == (n + 1, {"artist": f"Artist {n - 1}", "title": f"Title {n - 1}"})
    lines = [line for line, _ in result]
    assert lines == list(range(2, n + 2))
    assert [row["title"] for _, row in result] == [f"Title {i}" for i in range(n)]


def test_format_detection():
    assert detect_format("x.csv", "artist,title") == "csv"
    assert detect_format("feed.json", " \n[{") == "json"
    assert detect_format("feed.json", '{"a": 1}') == "jsonl"
    assert detect_format("catalog.jsonl", '{"a": 1}') == "jsonl"
