import pytest
from geometry import distance, polygon_area, rotate, rotate_polygon


def test_distance():
    assert distance((0, 0), (3, 4)) == 5


def test_quarter_turn():
    assert rotate((1, 0), 90) == pytest.approx((0, 1), abs=1e-9)


def test_half_turn_about_a_point():
    assert rotate((3, 1), 180, origin=(2, 1)) == pytest.approx((1, 1), abs=1e-9)


def test_rotation_keeps_the_area():
    square = [(0, 0), (2, 0), (2, 2), (0, 2)]
    turned = rotate_polygon(square, 30)
    assert polygon_area(turned) == pytest.approx(4)
    assert turned[1] == pytest.approx((3 ** 0.5, 1), abs=1e-9)
