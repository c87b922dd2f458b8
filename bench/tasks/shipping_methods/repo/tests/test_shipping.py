from decimal import Decimal

from shipping import Method, cheapest, quote


def test_standard_is_priced_by_weight():
    assert quote(Method.STANDARD, 2.5) == Decimal("5.90")


def test_express_costs_more():
    assert quote(Method.EXPRESS, 1) == Decimal("12.20")


def test_freight_is_flat():
    assert quote(Method.FREIGHT, 120) == Decimal("65.00")


def test_pickup_is_free():
    assert quote(Method.PICKUP, 4) == Decimal(0)


def test_cheapest_is_pickup():
    assert cheapest(2) is Method.PICKUP
