import pytest
from timeparse.durations import parse_duration


@pytest.mark.parametrize(
    "text, seconds",
    [("2h", 7200), ("1h30m", 5400), ("1h5m10s", 3910), ("1h10s", 3610), ("0h", 0), (" 3H ", 10800)],
)
def test_hours(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30m1h", "1h1h", "h", "", "1s1h"])
def test_order_and_repeats_are_enforced(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_old_forms_unchanged():
    assert parse_duration("1m30s") == 90
    assert parse_duration("45") == 45
