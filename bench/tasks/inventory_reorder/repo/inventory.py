"""Stock keeping for the warehouse: items, movements, reorders and the nightly CSV export.

The stock figures are whole units. Every change goes through a method that records a
Movement, so the audit trail explains every number on the shelf.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

CSV_FIELDS = ("sku", "name", "stock", "reorder_level", "reorder_qty", "unit_cost", "location")


class InventoryError(Exception):
    """Base class of the errors below."""


class UnknownItem(InventoryError, KeyError):
    """A SKU that is not in the inventory."""


class InsufficientStock(InventoryError):
    """Shipping more units than are on the shelf."""

    def __init__(self, sku: str, wanted: int, available: int) -> None:
        super().__init__(f"{sku}: wanted {wanted}, only {available} in stock")
        self.sku = sku
        self.wanted = wanted
        self.available = available


@dataclass
class Item:
    sku: str
    name: str
    stock: int = 0
    reorder_level: int = 0  # reorder when the stock falls to this level
    reorder_qty: int = 0  # how many to order then
    unit_cost: Decimal = Decimal(0)
    location: str = ""

    def value(self) -> Decimal:
        """What the units on the shelf cost us."""
        return self.unit_cost * self.stock


@dataclass(frozen=True)
class Movement:
    sku: str
    change: int  # positive in, negative out
    reason: str  # "receive", "ship", "adjust", "move"
    at: datetime
    note: str = ""


@dataclass
class Inventory:
    items: dict[str, Item] = field(default_factory=dict)
    movements: list[Movement] = field(default_factory=list)
    clock: object = None  # a callable returning datetime; None for datetime.now

    # ---- items

    def _now(self) -> datetime:
        return self.clock() if callable(self.clock) else datetime.now()

    def add_item(self, item: Item) -> Item:
        """Register an item; a SKU can only be registered once."""
        sku = item.sku.strip().upper()
        if not sku:
            raise ValueError("an item needs a SKU")
        if sku in self.items:
            raise InventoryError(f"{sku} is already registered")
        if item.stock < 0 or item.reorder_level < 0 or item.reorder_qty < 0:
            raise ValueError(f"{sku}: stock figures cannot be negative")
        item.sku = sku
        self.items[sku] = item
        return item

    def get(self, sku: str) -> Item:
        """The item with this SKU (any case); UnknownItem when there is none."""
        try:
            return self.items[sku.strip().upper()]
        except KeyError:
            raise UnknownItem(sku) from None

    def remove_item(self, sku: str) -> Item:
        """Deregister an item; only allowed once its shelf is empty."""
        item = self.get(sku)
        if item.stock:
            raise InventoryError(f"{item.sku} still has {item.stock} units in stock")
        del self.items[item.sku]
        return item

    def find(self, text: str) -> list[Item]:
        """Items whose SKU or name contains `text`, ignoring case, sorted by SKU."""
        needle = text.lower()
        return [i for i in self if needle in i.sku.lower() or needle in i.name.lower()]

    def __iter__(self) -> Iterator[Item]:
        return iter(sorted(self.items.values(), key=lambda i: i.sku))

    def __len__(self) -> int:
        return len(self.items)

    # ---- movements

    def _record(self, item: Item, change: int, reason: str, note: str = "") -> None:
        item.stock += change
        self.movements.append(Movement(item.sku, change, reason, self._now(), note))

    def receive(self, sku: str, qty: int, note: str = "") -> Item:
        """Units delivered by a supplier."""
        if qty <= 0:
            raise ValueError("received quantity must be positive")
        item = self.get(sku)
        self._record(item, qty, "receive", note)
        return item

    def ship(self, sku: str, qty: int, note: str = "") -> Item:
        """Units sent to a customer; InsufficientStock when there are not enough."""
        if qty <= 0:
            raise ValueError("shipped quantity must be positive")
        item = self.get(sku)
        if qty > item.stock:
            raise InsufficientStock(item.sku, qty, item.stock)
        self._record(item, -qty, "ship", note)
        return item

    def adjust(self, sku: str, counted: int, note: str = "stock take") -> int:
        """Set the stock to what a count found; returns the difference it made."""
        if counted < 0:
            raise ValueError("a count cannot be negative")
        item = self.get(sku)
        change = counted - item.stock
        if change:
            self._record(item, change, "adjust", note)
        return change

    def move(self, sku: str, location: str) -> Item:
        """Put an item in another bin; recorded as a zero-unit movement."""
        item = self.get(sku)
        old = item.location
        item.location = location.strip().upper()
        self._record(item, 0, "move", f"{old or '-'} -> {item.location}")
        return item

    def history(self, sku: str) -> list[Movement]:
        """The movements of one item, oldest first."""
        wanted = self.get(sku).sku
        return [m for m in self.movements if m.sku == wanted]

    # ---- reordering

    def needs_reorder(self, item: Item) -> bool:
        """Whether the item's stock has fallen to its reorder level (or below)."""
        return item.reorder_qty > 0 and item.stock < item.reorder_level

    def reorder_list(self) -> list[tuple[str, int]]:
        """(SKU, quantity to order) for every item that needs reordering, by SKU."""
        return [(i.sku, i.reorder_qty) for i in self if self.needs_reorder(i)]

    def reorder_cost(self) -> Decimal:
        """What the reorder list would cost at current unit costs."""
        return sum(
            (self.get(sku).unit_cost * qty for sku, qty in self.reorder_list()), Decimal(0)
        )

    # ---- reports

    def stock_value(self) -> Decimal:
        """The cost of everything on the shelves."""
        return sum((i.value() for i in self.items.values()), Decimal(0))

    def by_location(self) -> dict[str, list[str]]:
        """SKUs per bin, bins sorted, items without a bin under ""."""
        bins: dict[str, list[str]] = {}
        for item in self:
            bins.setdefault(item.location, []).append(item.sku)
        return dict(sorted(bins.items()))

    def low_stock_report(self) -> str:
        """The text the warehouse manager gets each morning."""
        lines = []
        for item in self:
            if self.needs_reorder(item):
                lines.append(
                    f"{item.sku:<10} {item.name:<24} {item.stock:>5} / {item.reorder_level:<5}"
                    f" order {item.reorder_qty}"
                )
        if not lines:
            return "No items need reordering."
        return "\n".join(["Items to reorder:", *lines])

    # ---- CSV

    def to_csv(self) -> str:
        """Every item as CSV with a header row, by SKU."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        for i in self:
            writer.writerow(
                [i.sku, i.name, i.stock, i.reorder_level, i.reorder_qty, i.unit_cost, i.location]
            )
        return out.getvalue()

    @classmethod
    def from_csv(cls, text: str) -> Inventory:
        """An inventory from to_csv's format; ValueError naming the line for a bad row."""
        inventory = cls()
        reader = csv.DictReader(io.StringIO(text))
        missing = set(CSV_FIELDS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"CSV is missing columns: {', '.join(sorted(missing))}")
        for row in reader:
            try:
                item = Item(
                    sku=row["sku"],
                    name=row["name"],
                    stock=int(row["stock"]),
                    reorder_level=int(row["reorder_level"]),
                    reorder_qty=int(row["reorder_qty"]),
                    unit_cost=Decimal(row["unit_cost"]),
                    location=row["location"],
                )
            except (ValueError, ArithmeticError) as e:
                raise ValueError(f"line {reader.line_num}: {e}") from None
            inventory.add_item(item)
        return inventory


def transfer(source: Inventory, dest: Inventory, sku: str, qty: int) -> None:
    """Move units between warehouses: shipped out of one, received into the other."""
    item = source.get(sku)
    if item.sku not in dest.items:
        dest.add_item(Item(item.sku, item.name, 0, item.reorder_level, item.reorder_qty,
                           item.unit_cost))
    source.ship(item.sku, qty, note="transfer out")
    dest.receive(item.sku, qty, note="transfer in")


def merge(inventories: Iterable[Inventory]) -> Inventory:
    """One inventory with the stock of several warehouses added up per SKU.

    Names, reorder settings, costs and bins come from the first warehouse that has the SKU.
    """
    total = Inventory()
    for inventory in inventories:
        for item in inventory:
            if item.sku in total.items:
                total.items[item.sku].stock += item.stock
            else:
                total.add_item(
                    Item(item.sku, item.name, item.stock, item.reorder_level, item.reorder_qty,
                         item.unit_cost, item.location)
                )
    return total
