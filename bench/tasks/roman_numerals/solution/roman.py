"""Roman numerals for the copyright lines of the film titles (1 to 3999)."""

_NUMERALS = [
    (1000, "M"),
    (900, "CM"),
    (500, "D"),
    (400, "CD"),
    (100, "C"),
    (90, "XC"),
    (50, "L"),
    (40, "XL"),
    (10, "X"),
    (9, "IX"),
    (5, "V"),
    (4, "IV"),
    (1, "I"),
]
_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def to_roman(number: int) -> str:
    """The standard (subtractive) numeral: 1994 -> "MCMXCIV"."""
    if not 0 < number < 4000:
        raise ValueError("only 1 to 3999 have standard numerals")
    out = []
    for value, numeral in _NUMERALS:
        count, number = divmod(number, value)
        out.append(numeral * count)
    return "".join(out)


def from_roman(text: str) -> int:
    """The value of a numeral; ValueError for a letter that is not a numeral."""
    total = 0
    previous = 0
    for ch in reversed(text.strip().upper()):
        if ch not in _VALUES:
            raise ValueError(f"not a roman numeral: {text!r}")
        value = _VALUES[ch]
        if value < previous:
            total -= value
        else:
            total += value
            previous = value
    return total


def copyright_line(year: int, holder: str) -> str:
    return f"© {to_roman(year)} {holder}"
