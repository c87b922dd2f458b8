import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from csvlite import parse, split_line


def test_quoted_field_may_contain_the_separator():
    assert split_line('a,"b,c",d') == ["a", "b,c", "d"]


def test_doubled_quote_is_a_literal_quote():
    assert split_line('"say ""hi""",x') == ['say "hi"', "x"]


def test_the_example_from_the_task():
    assert split_line('a,"b,c","say ""hi"""') == ["a", "b,c", 'say "hi"']


def test_empty_quoted_field():
    assert split_line('"",b') == ["", "b"]


def test_quoted_with_other_separator():
    assert split_line('x;"1;2";y', sep=";") == ["x", "1;2", "y"]


def test_unquoted_fields_unchanged():
    assert split_line(" a , b,c ") == ["a", "b", "c"]
    assert split_line("a,,b") == ["a", "", "b"]


def test_parse_uses_quoted_fields():
    rows = parse('name,city\n"Lovelace, Ada",London\n')
    assert rows == [{"name": "Lovelace, Ada", "city": "London"}]
