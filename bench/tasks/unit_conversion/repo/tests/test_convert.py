import pytest
from units.convert import convert, parse_quantity


def test_metric_lengths():
    assert convert(2.5, "km", "m") == 2500


def test_feet_to_inches():
    assert convert(5, "ft", "in") == pytest.approx(60)


def test_miles_to_kilometres():
    assert convert(26.2, "mi", "km") == pytest.approx(42.1648128)


def test_pounds_to_kilograms():
    assert convert(10, "lb", "kg") == pytest.approx(4.5359237)


def test_mixing_dimensions_is_an_error():
    with pytest.raises(ValueError):
        convert(1, "kg", "m")


def test_parse_quantity():
    assert parse_quantity("3ft") == (3.0, "ft")
    assert parse_quantity(" 12.5 mi ") == (12.5, "mi")
