"""Plane geometry for the floor-plan editor: points are (x, y) tuples in metres."""

import math

Point = tuple[float, float]
_RAD_PER_DEG = math.pi / 180


def distance(a: Point, b: Point) -> float:
    """Euclidean distance between two points."""
    return math.hypot(b[0] - a[0], b[1] - a[1])


def rotate(point: Point, degrees: float, origin: Point = (0.0, 0.0)) -> Point:
    """`point` turned counter-clockwise by `degrees` around `origin`."""
    angle = degrees * _RAD_PER_DEG
    dx, dy = point[0] - origin[0], point[1] - origin[1]
    cos, sin = math.cos(angle), math.sin(angle)
    return (origin[0] + dx * cos - dy * sin, origin[1] + dx * sin + dy * cos)


def rotate_polygon(points: list[Point], degrees: float, origin: Point = (0.0, 0.0)) -> list[Point]:
    """Every vertex of a polygon rotated the same way."""
    return [rotate(p, degrees, origin) for p in points]


def polygon_area(points: list[Point]) -> float:
    """Area of a simple polygon by the shoelace formula (vertices in either order)."""
    twice = 0.0
    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1]):
        twice += x1 * y2 - x2 * y1
    return abs(twice) / 2
