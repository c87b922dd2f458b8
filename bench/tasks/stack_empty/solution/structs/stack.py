"""A stack with its own exception for underflow, so callers need not catch IndexError broadly."""

from typing import Generic, TypeVar

T = TypeVar("T")


class StackEmpty(Exception):
    """pop() or peek() on an empty stack."""


class Stack(Generic[T]):
    def __init__(self) -> None:
        self._items: list[T] = []

    def __len__(self) -> int:
        return len(self._items)

    def push(self, item: T) -> None:
        self._items.append(item)

    def peek(self) -> T:
        """The top item; StackEmpty when there is none."""
        if not self._items:
            raise StackEmpty("peek at an empty stack")
        return self._items[-1]

    def pop(self) -> T:
        """Remove and return the top item; StackEmpty when there is none."""
        if not self._items:
            raise StackEmpty("pop from an empty stack")
        return self._items.pop()
