from datetime import datetime
from decimal import Decimal

import pytest
from inventory import InsufficientStock, Inventory, Item, UnknownItem, merge, transfer


def fixed_clock():
    return datetime(2024, 4, 2, 8, 0)


def stocked():
    inv = Inventory(clock=fixed_clock)
    inv.add_item(Item("a-1", "Hex bolt M6", 500, 100, 1000, Decimal("0.05"), "A1"))
    inv.add_item(Item("B-2", "Washer M6", 40, 40, 500, Decimal("0.01"), "A2"))
    inv.add_item(Item("C-3", "Wing nut M6", 12, 50, 200, Decimal("0.20"), "A2"))
    inv.add_item(Item("D-4", "Sample kit", 0, 0, 0, Decimal("5.00")))
    return inv


def test_skus_are_normalised():
    assert stocked().get(" A-1 ").name == "Hex bolt M6"
    with pytest.raises(UnknownItem):
        stocked().get("Z-9")


def test_ship_and_receive_are_recorded():
    inv = stocked()
    inv.ship("a-1", 20)
    inv.receive("A-1", 5, "PO 17")
    assert inv.get("A-1").stock == 485
    assert [m.change for m in inv.history("a-1")] == [-20, 5]


def test_cannot_ship_more_than_in_stock():
    with pytest.raises(InsufficientStock):
        stocked().ship("C-3", 13)


def test_item_exactly_at_its_reorder_level_is_reordered():
    assert stocked().reorder_list() == [("B-2", 500), ("C-3", 200)]


def test_shipping_down_to_the_level_triggers_a_reorder():
    inv = stocked()
    inv.ship("A-1", 400)
    assert ("A-1", 1000) in inv.reorder_list()


def test_reorder_cost():
    assert stocked().reorder_cost() == Decimal("45.00")


def test_low_stock_report():
    report = stocked().low_stock_report().splitlines()
    assert report[0] == "Items to reorder:"
    assert [line.split()[0] for line in report[1:]] == ["B-2", "C-3"]


def test_stock_value_and_bins():
    inv = stocked()
    assert inv.stock_value() == Decimal("27.80")
    assert inv.by_location() == {"": ["D-4"], "A1": ["A-1"], "A2": ["B-2", "C-3"]}


def test_csv_round_trip():
    inv = stocked()
    again = Inventory.from_csv(inv.to_csv())
    assert again.to_csv() == inv.to_csv()


def test_transfer_between_warehouses():
    main, shop = stocked(), Inventory()
    transfer(main, shop, "a-1", 50)
    assert main.get("A-1").stock == 450
    assert shop.get("A-1").stock == 50


def test_adjust_and_merge():
    inv = stocked()
    assert inv.adjust("C-3", 10) == -2
    other = Inventory()
    other.add_item(Item("C-3", "Wing nut", 5))
    assert merge([inv, other]).get("C-3").stock == 15
