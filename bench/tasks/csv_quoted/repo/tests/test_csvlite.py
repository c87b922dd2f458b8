import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from csvlite import column, parse, split_line


def test_split_strips_fields():
    assert split_line(" a , b,c ") == ["a", "b", "c"]


def test_other_separator():
    assert split_line("a;b;c", sep=";") == ["a", "b", "c"]


def test_parse_with_header():
    rows = parse("name,nights\nAda,3\n\nAlan,1\n")
    assert rows == [{"name": "Ada", "nights": "3"}, {"name": "Alan", "nights": "1"}]
    assert column(rows, "nights") == ["3", "1"]


def test_wrong_field_count():
    with pytest.raises(ValueError, match="line 2"):
        parse("a,b\n1,2,3\n")
