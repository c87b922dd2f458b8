"""One-token variations of traced lines: what they find, and that every one is valid Python."""

from __future__ import annotations

import ast

import pytest
from turnout.agent.mutants import (
    assignment_lines,
    imported_reads,
    mutants_of,
    string_lines,
    suspicious_lines,
    traced_lines,
)

TRACE = """\
src/geometry.py:14 rotate(point=(1, 0), degrees=90, origin=(0.0, 0.0))
  16: angle = degrees * _RAD_PER_DEG    -> angle = 0.785
  17: helper(angle)
  src/util.py:3 helper(angle=0.785)
    4: return angle * 2
    return 1.57
  19: return (origin[0] + dx, origin[1])
  return (0.7, 0.7)
"""


def test_a_trace_gives_the_lines_each_file_ran_in_order() -> None:
    assert traced_lines(TRACE) == {"src/geometry.py": [16, 17, 19], "src/util.py": [4]}


def test_the_module_level_constants_a_traced_line_reads_are_suspicious_too() -> None:
    source = "import math\n\nRATE = math.pi / 360\nUNUSED = 3\n\n\ndef f(x):\n    return x * RATE\n"
    assert suspicious_lines(source, [8]) == [8, 3]


def test_constants_come_in_through_the_assignments_that_read_them_with_the_entry_looked_up_first() -> None:
    source = ('"""Factors."""\n\nLENGTH = {\n    "m": 1.0,\n    "km": 1000.0,\n    "mi": 1.609344,\n}\n'
              'MASS = {"kg": 1.0}\nOTHER = 3\nDIMENSIONS = {"length": LENGTH, "mass": MASS}\n')
    # The trace prints the whole table too; only the key bound to a name is the one looked up.
    trace = "src/c.py:3 f(unit='mi')\n  5: x = table[unit]    -> table = {'m': 1.0, 'km': 1000.0, 'mi': 1.609344}"
    lines = assignment_lines(ast.parse(source), {"DIMENSIONS"}, trace=trace)
    assert lines[0] == 6  # the "mi" entry: the trace shows the test looking it up
    assert sorted(lines) == [3, 4, 5, 6, 7, 8, 10]  # DIMENSIONS, LENGTH and MASS, not OTHER


def test_the_names_a_line_reads_from_other_modules_name_the_module_they_are_set_in() -> None:
    source = ("from units.factors import DIMENSIONS as DIMS\nfrom . import rates\nimport units.extra as extra\n\n\n"
              "def f(unit):\n    return DIMS[unit] * rates.VAT + extra.BIAS\n")
    assert imported_reads(source, [7]) == [("units.factors", 0, "DIMENSIONS"), ("rates", 1, "VAT"),
                                           ("units.extra", 0, "BIAS")]
    assert imported_reads(source, [1]) == []  # only what the given lines read


def fixes(source: str, lines: list[int] | None = None) -> list[str]:
    lines = lines or list(range(1, len(source.splitlines()) + 1))
    found = mutants_of("m.py", source, lines, limit=1000)
    for mutant in found:
        ast.parse(mutant.text)  # every variation is valid Python
    return [m.after.strip() for m in found]


@pytest.mark.parametrize(("line", "fixed"), [
    ("ok = stock < level", "ok = stock <= level"),  # a comparison
    ("head = text[:width]", "head = text[:width - 1]"),  # an off-by-one in a slice
    ("rate = math.pi / 360", "rate = math.pi / 180"),  # a constant off by a factor of two
    ('factors = {"mi": 1.609344}', 'factors = {"mi": 1609.344}'),  # a unit off by a thousand
    ('rate = Decimal("0.50")', 'rate = Decimal("0.05")'),  # a decimal point in the wrong place
    ("n = total / (len(values) - 1)", "n = total / len(values)"),  # an offset that should go
    ('s = f"{h}:{m}:{s:02d}"', 's = f"{h}:{m:02d}:{s:02d}"'),  # a field missing its siblings' padding
    ("ok = a and b", "ok = a or b"),
    ("ok = not done", "ok = done"),
    ("for i in range(n):", "for i in range(n + 1):"),
    ("flag = True", "flag = False"),
])
def test_a_one_token_bug_is_among_the_variations_of_its_line(line: str, fixed: str) -> None:
    source = f"import math\nfrom decimal import Decimal\n\n{line}\n"
    if line.startswith("for"):
        source += "    pass\n"
    assert fixed in fixes(source, [4])


def test_an_except_that_catches_too_much_loses_one_type_at_a_time() -> None:
    source = "try:\n    x = int(s)\nexcept (OSError, ValueError):\n    x = 0\n"
    assert {"except OSError:", "except ValueError:"} <= set(fixes(source, [3]))


def test_variations_are_distinct_within_the_limit_and_only_of_the_lines_given() -> None:
    source = "a = 1 + 2\nb = x < y\n"
    found = mutants_of("m.py", source, [2], limit=3)
    assert len(found) == 3
    assert all(m.line == 2 and m.before == "b = x < y" for m in found)
    assert len({m.text for m in found}) == 3


def test_a_file_that_does_not_parse_has_no_variations() -> None:
    assert mutants_of("m.py", "def broken(:\n", [1], limit=10) == []


def test_the_lines_that_set_or_return_a_string_are_where_a_normalization_may_be_missing() -> None:
    trace = (
        "src/slugs.py:9 slugify(title='Hello World')\n"
        "  14: text = unicodedata.normalize('NFKD', title)    -> text = 'Hello World'\n"
        "  15: n = len(text)    -> n = 11\n"
        "  16: return text\n"
        "  return 'Hello World'\n"
    )
    assert string_lines(trace) == {"src/slugs.py": {14, 16}}


def test_a_missing_normalization_is_among_the_variations_of_a_line_that_sets_a_string() -> None:
    source = (
        "def _norm(name):\n    return name.strip().lower()\n\n\n"
        "def amount(s):\n    s = s.removeprefix('$')\n    if s.startswith('-'):\n        s = s[1:]\n"
        "    return s\n\n\n"
        "def section(line):\n    name = line[1:-1]\n    return name\n"
    )
    found = mutants_of("m.py", source, [8, 13], limit=1000, strings={8, 13})
    after = {m.after.strip() for m in found}
    assert "s = s[1:].removeprefix('$')" in after  # what the same function did to `s` before
    assert "name = _norm(line[1:-1])" in after  # the module's own one-argument helper
    assert "name = line[1:-1].lower()" in after
    assert not any("_norm(" in m.after for m in found if m.line == 8 and "def" in m.after)
