from decimal import Decimal

import pytest
from ledger.amounts import balance, format_amount, parse_amount


def test_plain_and_symbol():
    assert parse_amount("$1,234.50") == Decimal("1234.50")
    assert parse_amount("99") == Decimal(99)


def test_accounting_negative():
    assert parse_amount("(12.00)") == Decimal("-12.00")


def test_minus_sign():
    assert parse_amount("-12") == Decimal(-12)


def test_minus_before_the_symbol():
    assert parse_amount("-$12.50") == Decimal("-12.50")


def test_balance_with_a_refund():
    assert balance(["$100.00", "-$12.50", "$2.50"]) == Decimal("90.00")


def test_rubbish_is_rejected():
    with pytest.raises(ValueError):
        parse_amount("twelve")


def test_format():
    assert format_amount(Decimal("-1234.5")) == "-$1,234.50"
