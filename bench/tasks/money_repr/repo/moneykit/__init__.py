"""Money values for the billing service."""

from moneykit.money import Money

__all__ = ["Money"]
