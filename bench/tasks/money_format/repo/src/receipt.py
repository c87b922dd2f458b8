"""Receipt lines for the till: amounts are integer cents, shown as "$1,234.05"."""


def format_cents(cents: int, symbol: str = "$") -> str:
    """`cents` as money: thousands separators, two decimals, a leading '-' when negative."""
    sign = "-" if cents < 0 else ""
    dollars, rest = divmod(abs(cents), 100)
    return f"{sign}{symbol}{dollars:,}.{rest}"


def receipt_line(name: str, cents: int, width: int = 32) -> str:
    """One line of the receipt: the name on the left, the amount flush right, `width` wide."""
    amount = format_cents(cents)
    room = width - len(amount) - 1
    if len(name) > room:
        name = name[: room - 1] + "~"
    return f"{name:<{room}} {amount}"


def receipt(items: list[tuple[str, int]], width: int = 32) -> str:
    """The whole receipt: one line per item, a rule, and the total."""
    lines = [receipt_line(name, cents, width) for name, cents in items]
    lines.append("-" * width)
    lines.append(receipt_line("TOTAL", sum(c for _, c in items), width))
    return "\n".join(lines)
