import pytest
from semver import bump


def test_bump_each_part():
    assert bump("1.4.2", "major") == "2.0.0"
    assert bump("1.4.2", "minor") == "1.5.0"
    assert bump("1.4.2", "patch") == "1.4.3"


def test_prefix_is_accepted_and_dropped():
    assert bump("v0.9.9", "patch") == "0.9.10"


def test_unknown_part():
    with pytest.raises(ValueError):
        bump("1.0.0", "build")


def test_bad_version():
    with pytest.raises(ValueError):
        bump("1.0", "patch")
