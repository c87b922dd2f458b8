import pytest
from matrixlib.ops import determinant, identity, matmul, minor, transpose


def test_transpose():
    assert transpose([[1, 2, 3], [4, 5, 6]]) == [[1, 4], [2, 5], [3, 6]]


def test_matmul_by_identity():
    m = [[1, 2], [3, 4]]
    assert matmul(m, identity(2)) == m


def test_two_by_two_determinant():
    assert determinant([[1, 2], [3, 4]]) == -2


def test_minor_drops_a_row_and_a_column():
    assert minor([[1, 2, 3], [4, 5, 6], [7, 8, 9]], 1, 1) == [[1, 3], [7, 9]]


def test_three_by_three_determinant():
    assert determinant([[6, 1, 1], [4, -2, 5], [2, 8, 7]]) == -306
    assert determinant([[2, 0, 1], [1, 3, 2], [1, 1, 1]]) == 0


def test_determinant_of_identity():
    assert determinant(identity(4)) == 1


def test_non_square():
    with pytest.raises(ValueError):
        determinant([[1, 2, 3], [4, 5, 6]])
