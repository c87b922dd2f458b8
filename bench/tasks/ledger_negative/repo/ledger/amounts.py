"""Parsing money amounts as the bank exports write them."""

from decimal import Decimal, InvalidOperation

CURRENCY = "$"


def parse_amount(text: str) -> Decimal:
    """An amount such as "$1,234.50", "1234.5", "-12", "-$12.50" or "(12.00)" (negative).

    ValueError for anything else.
    """
    s = text.strip()
    negative = False
    if s.startswith("(") and s.endswith(")"):
        negative = True
        s = s[1:-1].strip()
    s = s.removeprefix(CURRENCY)
    if s.startswith("-"):
        negative = not negative
        s = s[1:]
    s = s.replace(",", "")
    try:
        value = Decimal(s)
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not an amount: {text!r}")
    return -value if negative else value


def format_amount(value: Decimal) -> str:
    """The ledger's own style: "-$1,234.50"."""
    sign = "-" if value < 0 else ""
    return f"{sign}{CURRENCY}{abs(value):,.2f}"


def balance(amounts: list[str]) -> Decimal:
    """The sum of a column of amounts."""
    return sum((parse_amount(a) for a in amounts), Decimal(0))
