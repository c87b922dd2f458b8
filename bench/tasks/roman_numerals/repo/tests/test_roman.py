import pytest
from roman import copyright_line, from_roman, to_roman


@pytest.mark.parametrize("number, numeral", [
    (1, "I"), (4, "IV"), (9, "IX"), (14, "XIV"), (40, "XL"), (90, "XC"), (400, "CD"),
    (1666, "MDCLXVI"), (2024, "MMXXIV"), (3999, "MMMCMXCIX"),
])
def test_to_roman(number, numeral):
    assert to_roman(number) == numeral


def test_nineteen_ninety_four():
    assert to_roman(1994) == "MCMXCIV"


def test_round_trip():
    for n in range(1, 4000):
        assert from_roman(to_roman(n)) == n


def test_copyright_line():
    assert copyright_line(1985, "Universal") == "© MCMLXXXV Universal"


def test_out_of_range():
    with pytest.raises(ValueError):
        to_roman(0)
