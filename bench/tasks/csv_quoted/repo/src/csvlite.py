"""A tiny CSV reader for the export files of the booking system.

The files are small and the machines have only the standard library's bare minimum, so this is
a few functions rather than the csv module's dialects.
"""


def split_line(line: str, sep: str = ",") -> list[str]:
    """The fields of one line, each stripped of surrounding whitespace."""
    return [field.strip() for field in line.split(sep)]


def parse(text: str, sep: str = ",") -> list[dict[str, str]]:
    """The rows of a file with a header line, as dicts keyed by the header's names.

    Blank lines are skipped; a row with the wrong number of fields is a ValueError.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = split_line(lines[0], sep)
    rows = []
    for number, line in enumerate(lines[1:], 2):
        fields = split_line(line, sep)
        if len(fields) != len(header):
            raise ValueError(f"line {number}: expected {len(header)} fields, got {len(fields)}")
        rows.append(dict(zip(header, fields)))
    return rows


def column(rows: list[dict[str, str]], name: str) -> list[str]:
    """One column's values, in row order."""
    return [row[name] for row in rows]
