import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from settings import DEFAULTS, load_settings, parse_settings


def test_values_take_the_type_of_the_default():
    assert parse_settings("port = 9000\ndebug=yes # for now\n") == {"port": 9000, "debug": True}


def test_missing_file_gives_the_defaults(tmp_path):
    assert load_settings(tmp_path / "nope.conf") == DEFAULTS


def test_file_overrides_defaults(tmp_path):
    conf = tmp_path / "app.conf"
    conf.write_text("workers=8\n")
    assert load_settings(conf)["workers"] == 8


def test_bad_integer_is_reported(tmp_path):
    conf = tmp_path / "app.conf"
    conf.write_text("port=80a\n")
    with pytest.raises(ValueError, match="port"):
        load_settings(conf)


def test_unknown_key_is_reported(tmp_path):
    conf = tmp_path / "app.conf"
    conf.write_text("colour=blue\n")
    with pytest.raises(ValueError):
        load_settings(conf)
