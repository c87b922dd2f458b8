"""A tiny CSV reader for the export files of the booking system.

The files are small and the machines have only the standard library's bare minimum, so this is
a few functions rather than the csv module's dialects.
"""


def split_line(line: str, sep: str = ",") -> list[str]:
    """The fields of one line: unquoted ones stripped of surrounding whitespace.

    A field starting with '"' runs to its closing quote and may contain `sep`; '""' inside it
    is one literal quote.
    """
    fields: list[str] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i < n and line[i] == '"':
            i += 1
            value = []
            while i < n:
                if line[i] == '"':
                    if i + 1 < n and line[i + 1] == '"':
                        value.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                value.append(line[i])
                i += 1
            end = line.find(sep, i)
            end = n if end < 0 else end
            fields.append("".join(value))
        else:
            end = line.find(sep, i)
            end = n if end < 0 else end
            fields.append(line[i:end].strip())
        if end >= n:
            return fields
        i = end + len(sep)


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
