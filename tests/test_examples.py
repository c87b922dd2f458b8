"""The examples a task states in code, found and turned into asserts without the model."""

from __future__ import annotations

import ast
from pathlib import Path

from turnout.agent.examples import dotted, example_tests, module_names, task_examples


def test_examples_are_found_whatever_joins_the_call_to_its_value() -> None:
    task = ("Make split_line handle quotes: split_line('a,\"b,c\"') == ['a', 'b,c']. "
            'repr(Money("12.5", "EUR")) must be "Money(\'12.50\', \'EUR\')", and '
            '`slug("Hello World")` should return `"hello-world"`; bump("1.4.2", "minor") -> "1.5.0".')
    assert task_examples(task) == [
        ("split_line('a,\"b,c\"')", "['a', 'b,c']"),
        ('repr(Money("12.5", "EUR"))', '"Money(\'12.50\', \'EUR\')"'),
        ('slug("Hello World")', '"hello-world"'),
        ('bump("1.4.2", "minor")', '"1.5.0"'),
    ]


def test_prose_is_not_an_example() -> None:
    assert task_examples("The total == the sum of the parts, and it returns a dict.") == []
    assert task_examples("count(x) == len(items) must hold") == []  # the value is not a literal
    assert task_examples("the result of f(x) is wrong") == []


def test_example_tests_import_each_name_from_where_it_is_or_will_be(tmp_path: Path) -> None:
    (tmp_path / "src" / "shop").mkdir(parents=True)
    (tmp_path / "src/shop/money.py").write_text("class Money:\n    pass\n\n\nRATE = 2\n")
    roots = [tmp_path / "src"]
    modules = module_names(tmp_path, ["src/shop/money.py"], roots)
    assert modules == {"Money": "shop.money", "RATE": "shop.money"}
    assert dotted(tmp_path / "src/shop/__init__.py", roots) == "shop"

    text = example_tests('repr(Money(1)) == "Money(1)" and total([Money(1)]) == 1',
                         "import sys", modules, "shop.totals")
    ast.parse(text)
    assert "import sys" in text
    assert "    from shop.money import Money\n    assert repr(Money(1)) == \"Money(1)\"" in text
    # A name nothing defines yet comes from the module the task adds to.
    assert "    from shop.totals import total\n    from shop.money import Money\n" in text
    assert example_tests("no examples here", "", modules, "shop.totals") == ""
