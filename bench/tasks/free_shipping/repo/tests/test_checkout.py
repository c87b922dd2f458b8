import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from checkout import apply_coupon, order_total, shipping_cost, subtotal


def test_subtotal_multiplies_quantities():
    lines = [{"qty": 2, "price": "3.50"}, {"qty": 1, "price": "10"}]
    assert subtotal(lines) == Decimal("17.00")


def test_coupon_takes_a_percentage_off():
    assert apply_coupon(Decimal("80.00"), 25) == Decimal("60.00")


def test_small_orders_pay_shipping():
    assert shipping_cost(Decimal("49.99")) == Decimal("4.95")


def test_shipping_is_free_from_the_threshold_on():
    assert shipping_cost(Decimal("50.00")) == Decimal("0.00")


def test_order_of_exactly_fifty_ships_free():
    lines = [{"qty": 4, "price": "12.50"}]
    assert order_total(lines) == Decimal("50.00")


def test_large_order_total():
    lines = [{"qty": 1, "price": "120.00"}]
    assert order_total(lines, percent_off=10) == Decimal("108.00")
