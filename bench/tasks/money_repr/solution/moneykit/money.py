"""An amount of money in one currency, exact to the cent."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")


class Money:
    """Immutable; arithmetic only between the same currency."""

    __slots__ = ("_amount", "_currency")

    def __init__(self, amount: str | int | Decimal, currency: str = "EUR") -> None:
        if len(currency) != 3 or not currency.isalpha():
            raise ValueError(f"not an ISO 4217 currency code: {currency!r}")
        self._amount = Decimal(str(amount)).quantize(CENT, rounding=ROUND_HALF_EVEN)
        self._currency = currency.upper()

    @property
    def amount(self) -> Decimal:
        return self._amount

    @property
    def currency(self) -> str:
        return self._currency

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"expected Money, got {type(other).__name__}")
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        return Money(self.amount * Decimal(factor), self.currency)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return (self.amount, self.currency) == (other.amount, other.currency)

    def __hash__(self) -> int:
        return hash((self.amount, self.currency))

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    def __repr__(self) -> str:
        return f"Money({str(self.amount)!r}, {self.currency!r})"

    def allocate(self, parts: int) -> list[Money]:
        """Split into `parts` amounts that differ by at most a cent and add up exactly."""
        if parts < 1:
            raise ValueError("parts must be at least 1")
        cents = int(self.amount / CENT)
        base, extra = divmod(cents, parts)
        return [Money(Decimal(base + (1 if i < extra else 0)) * CENT, self.currency)
                for i in range(parts)]
