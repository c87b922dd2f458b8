"""Invoice totals with VAT.

UK rates: standard 20%, reduced 5% (home energy, child car seats), zero 0% (most food, books).
Amounts are Decimals rounded half-up to the penny per line, as HMRC allows.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

PENNY = Decimal("0.01")
VAT_RATES = {
    "standard": Decimal("0.20"),
    "reduced": Decimal("0.50"),
    "zero": Decimal(0),
}


@dataclass(frozen=True)
class Line:
    description: str
    net: Decimal  # price before VAT, for the whole line
    rate: str = "standard"


def line_vat(line: Line) -> Decimal:
    """The VAT due on one line, rounded to the penny."""
    try:
        rate = VAT_RATES[line.rate]
    except KeyError:
        raise ValueError(f"unknown VAT rate {line.rate!r}") from None
    return (line.net * rate).quantize(PENNY, rounding=ROUND_HALF_UP)


def invoice_totals(lines: list[Line]) -> dict[str, Decimal]:
    """Net, VAT and gross totals of an invoice."""
    net = sum((line.net for line in lines), Decimal(0))
    vat = sum((line_vat(line) for line in lines), Decimal(0))
    return {"net": net, "vat": vat, "gross": net + vat}
