import pytest
from semver import compare, format_version, latest, parse_version


def test_parse():
    assert parse_version("v1.4.2") == (1, 4, 2)
    assert format_version((1, 4, 2)) == "1.4.2"


def test_numeric_comparison():
    assert compare("1.10.0", "1.9.3") == 1
    assert compare("2.0.0", "v2.0.0") == 0


def test_latest():
    assert latest(["v1.2.0", "1.10.1", "1.9.9"]) == "1.10.1"


def test_bad_version():
    with pytest.raises(ValueError):
        parse_version("1.2")
