"""Order totals for the web shop's checkout page.

Prices are Decimals throughout: floats would drift by fractions of a cent.
"""

from decimal import ROUND_HALF_UP, Decimal

FREE_SHIPPING_THRESHOLD = Decimal("50.00")
FLAT_SHIPPING = Decimal("4.95")
CENT = Decimal("0.01")


def subtotal(lines: list[dict]) -> Decimal:
    """Sum of quantity times unit price over the order lines.

    Each line is a dict with a "qty" (int) and a "price" (str, int or Decimal).
    """
    total = Decimal(0)
    for line in lines:
        total += Decimal(str(line["price"])) * line["qty"]
    return total.quantize(CENT, rounding=ROUND_HALF_UP)


def apply_coupon(amount: Decimal, percent_off: int) -> Decimal:
    """The amount after a percentage coupon, rounded to the cent."""
    if not 0 <= percent_off <= 100:
        raise ValueError(f"coupon percentage out of range: {percent_off}")
    discounted = amount * (Decimal(100 - percent_off) / Decimal(100))
    return discounted.quantize(CENT, rounding=ROUND_HALF_UP)


def shipping_cost(amount: Decimal) -> Decimal:
    """Flat shipping, waived for orders of FREE_SHIPPING_THRESHOLD or more (after coupons)."""
    if amount >= FREE_SHIPPING_THRESHOLD:
        return Decimal("0.00")
    return FLAT_SHIPPING


def order_total(lines: list[dict], percent_off: int = 0) -> Decimal:
    """What the customer pays: the discounted subtotal plus shipping."""
    goods = apply_coupon(subtotal(lines), percent_off)
    return goods + shipping_cost(goods)
