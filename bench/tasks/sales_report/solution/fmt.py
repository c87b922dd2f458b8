"""Cell formatting for the plain-text reports."""


def money(value: float) -> str:
    """An amount with thousands separators and two decimals: 12345.6 -> "12,345.60"."""
    return f"{value:,.2f}"


def percent(ratio: float) -> str:
    """A share with one decimal: 0.125 -> "12.5%"."""
    return f"{ratio * 100:.1f}%"


def cell(text: str, width: int, align: str = "<") -> str:
    """`text` padded to `width`, aligned '<' (left), '>' (right) or '^' (centre)."""
    if align not in "<>^":
        raise ValueError(f"bad alignment {align!r}")
    return f"{text:{align}{width}}"
