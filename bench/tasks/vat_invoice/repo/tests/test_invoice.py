import sys
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from invoice import Line, invoice_totals, line_vat


def test_standard_rate_line():
    assert line_vat(Line("laptop", Decimal("500.00"))) == Decimal("100.00")


def test_zero_rate_line():
    assert line_vat(Line("book", Decimal("12.99"), "zero")) == Decimal("0.00")


def test_reduced_rate_line():
    assert line_vat(Line("car seat", Decimal("80.00"), "reduced")) == Decimal("4.00")


def test_unknown_rate_is_rejected():
    with pytest.raises(ValueError):
        line_vat(Line("thing", Decimal(1), "luxury"))


def test_mixed_invoice():
    lines = [
        Line("heater", Decimal("100.00")),
        Line("gas bill", Decimal("60.00"), "reduced"),
        Line("bread", Decimal("2.50"), "zero"),
    ]
    assert invoice_totals(lines) == {
        "net": Decimal("162.50"),
        "vat": Decimal("23.00"),
        "gross": Decimal("185.50"),
    }
