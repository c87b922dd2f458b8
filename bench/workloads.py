"""The speculative-decoding benchmark's workloads: agent-shaped calls with known repetition.

Each workload is a list of calls. A call with `carry_reply` adds its messages to a running
history and its reply after them, so later calls carry earlier files, results and replies, as an
agent loop does.
"""

from __future__ import annotations

from pydantic import BaseModel

INVENTORY_PY = '''"""Inventory bookkeeping for a small shop."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Item:
    sku: str
    name: str
    quantity: int = 0
    price_cents: int = 0
    tags: list[str] = field(default_factory=list)

    def value_cents(self) -> int:
        return self.quantity * self.price_cents


class Inventory:
    def __init__(self) -> None:
        self.items: dict[str, Item] = {}

    def add(self, item: Item) -> None:
        if item.sku in self.items:
            raise KeyError(f"duplicate sku {item.sku}")
        self.items[item.sku] = item

    def remove(self, sku: str) -> Item:
        return self.items.pop(sku)

    def restock(self, sku: str, count: int) -> int:
        if count <= 0:
            raise ValueError("count must be positive")
        item = self.items[sku]
        item.quantity += count
        return item.quantity

    def sell(self, sku: str, count: int) -> int:
        item = self.items[sku]
        if count > item.quantity:
            raise ValueError(f"only {item.quantity} of {sku} left")
        item.quantity -= count
        return item.quantity

    def total_value_cents(self) -> int:
        return sum(item.value_cents() for item in self.items.values())

    def low_stock(self, threshold: int = 5) -> list[Item]:
        return [i for i in self.items.values() if i.quantity < threshold]

    def by_tag(self, tag: str) -> list[Item]:
        return [i for i in self.items.values() if tag in i.tags]

    def rename(self, sku: str, new_name: str) -> None:
        self.items[sku].name = new_name

    def to_json(self) -> str:
        rows = [
            {
                "sku": i.sku,
                "name": i.name,
                "quantity": i.quantity,
                "price_cents": i.price_cents,
                "tags": i.tags,
            }
            for i in self.items.values()
        ]
        return json.dumps(rows, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Inventory:
        inventory = cls()
        for row in json.loads(text):
            inventory.add(Item(**row))
        return inventory

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Inventory:
        return cls.from_json(path.read_text())


def report(inventory: Inventory) -> str:
    lines = [f"{len(inventory.items)} items"]
    for item in sorted(inventory.items.values(), key=lambda i: i.sku):
        lines.append(f"{item.sku}: {item.name} x{item.quantity}")
    lines.append(f"total value: {inventory.total_value_cents() / 100:.2f}")
    low = inventory.low_stock()
    if low:
        lines.append("low stock: " + ", ".join(i.sku for i in low))
    return "\\n".join(lines)
'''

CALC_PY = '''def add(a, b):
    return a - b


def mean(values):
    if not values:
        raise ValueError("mean of nothing")
    return sum(values) / len(values)


def clamp(value, low, high):
    return max(low, min(value, high))
'''

PYTEST_FAILURE = '''============================= test session starts ==============================
collected 3 items

tests/test_calc.py F..                                                   [100%]

=================================== FAILURES ===================================
___________________________________ test_add ___________________________________

    def test_add():
>       assert add(2, 3) == 5
E       assert -1 == 5
E        +  where -1 = add(2, 3)

tests/test_calc.py:5: AssertionError
=========================== short test summary info ============================
FAILED tests/test_calc.py::test_add - assert -1 == 5
========================= 1 failed, 2 passed in 0.02s =========================='''

README_MD = '''# inventory

A small library for keeping a shop's stock.

## Install

    pip install inventory

## Usage

Create an `Inventory`, add `Item`s and sell them:

    from inventory import Inventory, Item
    shop = Inventory()
    shop.add(Item(sku="A1", name="lamp", quantity=3, price_cents=1999))
    shop.sell("A1", 1)

## Features

- add, remove, restock and sell items
- list the items that run low on stock
- find items by tag
- save to and load from JSON files, written atomically

## Saving

`Inventory.save(path)` writes the JSON to a temporary file and renames it into place, so a
crash never leaves half a file behind. `Inventory.load(path)` reads it back.

## Reports

`report(inventory)` prints one line per item, the total value and the items low on stock.

## License

MIT
'''

TOOLS_SYSTEM = '''You call tools by replying with one JSON object in a ```json code fence:
```json
{"name": "<tool name>", "arguments": {<arguments>}}
```
Tools:
- read_file(path: string, start_line?: integer, end_line?: integer): read a file
- replace_in_file(path: string, old: string, new: string): replace exact text in a file
- run_tests(command: string, timeout_seconds?: integer): run a test command'''


class Call(BaseModel):
    messages: list[dict[str, str]]
    max_tokens: int
    carry_reply: bool = False  # extend a running history with these messages and the reply


class Workload(BaseModel):
    name: str
    kind: str  # "code" (outputs must match exactly) or "prose" (near-ties tolerated)
    calls: list[Call]


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def workloads() -> list[Workload]:
    return [
        Workload(name="rewrite", kind="code", calls=[Call(max_tokens=500, messages=_user(
            "Rename the method `restock` to `replenish` everywhere in this file (its callers "
            "too). Return the whole file in one ```python block and nothing else.\n\n"
            f"```python\n{INVENTORY_PY}```"))]),
        Workload(name="patch", kind="code", calls=[Call(max_tokens=160, messages=_user(
            f"The tests fail:\n\n{PYTEST_FAILURE}\n\nHere is calc.py:\n\n```python\n{CALC_PY}```\n\n"
            "Reply with only a unified diff (--- a/calc.py, +++ b/calc.py) that fixes the bug."))]),
        Workload(name="toolcall", kind="code", calls=[
            Call(max_tokens=80, messages=[{"role": "system", "content": TOOLS_SYSTEM}, *_user(
                f"The test output was:\n\n{PYTEST_FAILURE}\n\nRead lines 1 to 3 of src/shop/calc.py "
                "to see the `add` function.")]),
            Call(max_tokens=80, messages=[{"role": "system", "content": TOOLS_SYSTEM}, *_user(
                "In src/shop/calc.py replace the text `return a - b` with `return a + b`.")]),
            Call(max_tokens=80, messages=[{"role": "system", "content": TOOLS_SYSTEM}, *_user(
                "Run the tests with the command `python -m pytest -q tests/test_calc.py` "
                "and a timeout of 120 seconds.")]),
        ]),
        Workload(name="markdown", kind="code", calls=[Call(max_tokens=320, messages=_user(
            "Edit this README: change the install command to `pip install shop-inventory`, and "
            "change the license to Apache-2.0. Keep everything else exactly as it is. Return "
            f"the whole document in a ```markdown block.\n\n```markdown\n{README_MD}```"))]),
        Workload(name="session", kind="code", calls=_session()),
        Workload(name="prose", kind="prose", calls=[Call(max_tokens=120, messages=_user(
            "Write a short paragraph on why small teams should keep their build fast, "
            "with one concrete example."))]),
    ]


def _session() -> list[Call]:
    """Six agent calls; each carries the history, earlier files and tool results."""
    system = {"role": "system", "content": TOOLS_SYSTEM}
    steps = [
        ("Make the failing test pass. Start by running `python -m pytest -q`.", 40),
        (f"Result of run_tests:\n{PYTEST_FAILURE}\n\nNow read calc.py.", 40),
        ((f"Result of read_file:\n{CALC_PY}\nFix the bug: reply with the whole corrected calc.py "
         "in a ```python block."), 120),
        (("Result of replace_in_file: ok. Now also add a docstring to `mean` and reply with the "
         "whole file again in a ```python block."), 150),
        ("Now call run_tests again with `python -m pytest -q`.", 40),
        (("Result of run_tests: 3 passed. Reply with the final calc.py once more, in a "
         "```python block, then one sentence saying what changed."), 150),
    ]
    calls = []
    for i, (text, budget) in enumerate(steps):
        first = [system] if i == 0 else []
        calls.append(Call(messages=[*first, {"role": "user", "content": text}], max_tokens=budget,
                          carry_reply=True))
    return calls
