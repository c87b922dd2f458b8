"""Shipping quotes for the checkout: a price per method and parcel weight."""

from decimal import Decimal
from enum import Enum


class Method(Enum):
    STANDARD = "standard"  # 3-5 days
    EXPRESS = "express"  # next day
    FREIGHT = "freight"  # pallets, over 30 kg
    PICKUP = "pickup"  # collected in store: free


STANDARD_BASE = Decimal("3.90")
PER_KG = Decimal("0.80")
EXPRESS_SURCHARGE = Decimal("7.50")
FREIGHT_FLAT = Decimal("65.00")


def quote(method: Method, weight_kg: float) -> Decimal:
    """The price of sending a parcel of `weight_kg` by `method`."""
    if weight_kg <= 0:
        raise ValueError("a parcel must weigh something")
    weight = Decimal(str(weight_kg))
    if method is Method.STANDARD:
        return STANDARD_BASE + PER_KG * weight
    if method is Method.EXPRESS:
        return STANDARD_BASE + PER_KG * weight + EXPRESS_SURCHARGE
    if method is Method.FREIGHT:
        return FREIGHT_FLAT
    if method is Method.PICKUP:
        return Decimal("0.00")
    raise ValueError(f"no price for shipping method {method}")


def cheapest(weight_kg: float) -> Method:
    """The cheapest method that can take the parcel (freight only above 30 kg)."""
    methods = [m for m in Method if m is not Method.FREIGHT or weight_kg > 30]
    return min(methods, key=lambda m: quote(m, weight_kg))
