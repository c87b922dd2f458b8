import pytest
from timeparse import format_duration, parse_duration


@pytest.mark.parametrize(
    "text, seconds",
    [("90", 90), ("45s", 45), ("10m", 600), ("1m30s", 90), (" 2M ", 120), ("0s", 0)],
)
def test_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "30s1m", "1.5m", "ten"])
def test_malformed(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_round_trips():
    for seconds in (0, 5, 60, 90, 3599):
        assert parse_duration(format_duration(seconds)) == seconds
