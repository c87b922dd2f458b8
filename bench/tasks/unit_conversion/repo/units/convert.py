"""Converting quantities between units of the same dimension."""

from units.factors import DIMENSIONS


def dimension_of(unit: str) -> str:
    """The dimension a unit measures; ValueError for an unknown unit."""
    for name, table in DIMENSIONS.items():
        if unit in table:
            return name
    raise ValueError(f"unknown unit {unit!r}")


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """`value` in `from_unit` expressed in `to_unit`."""
    dim = dimension_of(from_unit)
    if dimension_of(to_unit) != dim:
        raise ValueError(f"cannot convert {from_unit} to {to_unit}")
    table = DIMENSIONS[dim]
    return value * table[from_unit] / table[to_unit]


def parse_quantity(text: str) -> tuple[float, str]:
    """ "12.5 km" -> (12.5, "km"); the space is optional ("3ft")."""
    text = text.strip()
    i = len(text)
    while i > 0 and text[i - 1].isalpha():
        i -= 1
    number, unit = text[:i].strip(), text[i:]
    if not number or not unit:
        raise ValueError(f"not a quantity: {text!r}")
    dimension_of(unit)
    return float(number), unit
