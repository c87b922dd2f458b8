from decimal import Decimal

import pytest
from moneykit import Money


def test_amount_is_rounded_to_the_cent():
    assert Money("10.005").amount == Decimal("10.00")
    assert Money(3, "usd").currency == "USD"


def test_arithmetic():
    assert Money("1.10") + Money("2.20") == Money("3.30")
    assert Money("5") * 3 == Money("15")


def test_currency_mismatch():
    with pytest.raises(ValueError):
        Money(1, "EUR") + Money(1, "USD")


def test_str():
    assert str(Money("12.5", "EUR")) == "12.50 EUR"


def test_allocate_adds_up():
    parts = Money("10.00").allocate(3)
    assert [str(p) for p in parts] == ["3.34 EUR", "3.33 EUR", "3.33 EUR"]
