"""Conversion factors to each dimension's base unit: metres for length, kilograms for mass.

Imperial factors are the exact international definitions (1959).
"""

LENGTH = {
    "mm": 0.001,
    "cm": 0.01,
    "m": 1.0,
    "km": 1000.0,
    "in": 0.0254,
    "ft": 0.3048,
    "yd": 0.9144,
    "mi": 1609.344,
}

MASS = {
    "g": 0.001,
    "kg": 1.0,
    "t": 1000.0,
    "oz": 0.028349523125,
    "lb": 0.45359237,
    "st": 6.35029318,
}

DIMENSIONS = {"length": LENGTH, "mass": MASS}
