"""Matrix operations on lists of lists of numbers; matrices are never modified in place."""

Matrix = list[list[float]]


def shape(m: Matrix) -> tuple[int, int]:
    """(rows, columns); ValueError for ragged rows."""
    widths = {len(row) for row in m}
    if len(widths) > 1:
        raise ValueError("ragged matrix")
    return len(m), widths.pop() if widths else 0


def identity(n: int) -> Matrix:
    return [[1 if i == j else 0 for j in range(n)] for i in range(n)]


def transpose(m: Matrix) -> Matrix:
    return [list(col) for col in zip(*m)]


def matmul(a: Matrix, b: Matrix) -> Matrix:
    """The product a @ b."""
    if shape(a)[1] != shape(b)[0]:
        raise ValueError(f"cannot multiply {shape(a)} by {shape(b)}")
    cols = transpose(b)
    return [[sum(x * y for x, y in zip(row, col)) for col in cols] for row in a]


def minor(m: Matrix, i: int, j: int) -> Matrix:
    """`m` without row `i` and column `j`."""
    return [row[:j] + row[j + 1:] for k, row in enumerate(m) if k != i]


def determinant(m: Matrix) -> float:
    """The determinant of a square matrix, by cofactor expansion along the first row."""
    rows, cols = shape(m)
    if rows != cols:
        raise ValueError("determinant of a non-square matrix")
    if rows == 0:
        return 1
    if rows == 1:
        return m[0][0]
    if rows == 2:
        return m[0][0] * m[1][1] - m[0][1] * m[1][0]
    return sum((-1) ** j * m[0][j] * determinant(minor(m, 0, j)) for j in range(cols))
