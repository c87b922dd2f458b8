from datetime import date, datetime, timedelta

import pytest
from humanize import (
    compact_number,
    eta,
    format_bytes,
    format_duration,
    format_elapsed,
    format_rate,
    join_list,
    naturaltime,
    ordinal,
    parse_size,
    relative_date,
    status_line,
    summarize_counts,
    truncate_middle,
)


def test_ordinals():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 102)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "102nd",
    ]


def test_bytes():
    assert format_bytes(999) == "999 B"
    assert format_bytes(1500) == "1.5 kB"
    assert format_bytes(1536, binary=True) == "1.5 KiB"
    assert parse_size("1.5 kB") == 1500


def test_elapsed_under_an_hour():
    assert format_elapsed(309) == "5:09"
    assert format_elapsed(59.9) == "0:59"


def test_elapsed_over_an_hour():
    assert format_elapsed(3909) == "1:05:09"
    assert format_elapsed(36000) == "10:00:00"


def test_negative_elapsed():
    with pytest.raises(ValueError):
        format_elapsed(-1)


def test_duration():
    assert format_duration(3725) == "1h 2m"
    assert format_duration(45) == "45s"


def test_lists():
    assert join_list(["a", "b", "c"]) == "a, b, and c"
    assert join_list(["tea", "coffee"], "or") == "tea or coffee"


def test_naturaltime():
    now = datetime(2024, 5, 1, 12, 0, 0)
    assert naturaltime(now - timedelta(minutes=5), now) == "5 minutes ago"
    assert naturaltime(now + timedelta(hours=1, minutes=10), now) == "in an hour"


def test_truncate_middle():
    assert truncate_middle("abcdefghij", 7) == "abc…hij"


def test_compact_numbers_and_rates():
    assert compact_number(950) == "950"
    assert compact_number(1200) == "1.2k"
    assert compact_number(3_000_000) == "3M"
    assert format_rate(25, 2) == "12.5 items/s"
    assert format_rate(1, 20, "file") == "3.0 files/min"


def test_eta():
    assert eta(0, 10, 5) == "unknown"
    assert eta(2, 10, 60) == "4m"


def test_relative_dates():
    today = date(2024, 5, 8)  # a Wednesday
    assert relative_date(date(2024, 5, 7), today) == "yesterday"
    assert relative_date(date(2024, 5, 10), today) == "Friday"
    assert relative_date(date(2024, 3, 3), today) == "3 Mar 2024"


def test_summarize_counts():
    counts = {"failed": 1, "passed": 3, "errors": 0, "skipped": 2}
    assert summarize_counts(counts, order=["passed"]) == "3 passed, 1 failed, 2 skipped"
    assert summarize_counts({}) == "nothing"


def test_status_line():
    assert status_line("build", 5, 10, 3725) == "build [##########----------]  50% 5/10 1:02:05"
