"""The weekly sales report: one row per region, a share of the total and a total row."""

from fmt import cell, money, percent

HEADERS = ("Region", "Units", "Revenue", "Share")


def sales_report(rows: list[tuple[str, int, float]]) -> str:
    """A table of (region, units, revenue) rows, widest cell setting each column's width."""
    total_units = sum(units for _, units, _ in rows)
    total_revenue = sum(revenue for _, _, revenue in rows)
    body = [
        (region, str(units), money(revenue), percent(revenue / total_revenue))
        for region, units, revenue in rows
    ]
    body.append(("Total", str(total_units), money(total_revenue), percent(1.0)))
    widths = [max(len(r[i]) for r in [HEADERS, *body]) for i in range(len(HEADERS))]
    aligns = ("<", ">", ">", ">")
    lines = []
    for r in [HEADERS, *body]:
        lines.append("  ".join(cell(text, w, a) for text, w, a in zip(r, widths, aligns)))
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
