"""Bracket matching for template expressions."""

from structs.stack import Stack, StackEmpty

PAIRS = {")": "(", "]": "[", "}": "{"}


def balanced(text: str) -> bool:
    """Whether every bracket in `text` is closed by its partner, properly nested."""
    stack: Stack[str] = Stack()
    for ch in text:
        if ch in "([{":
            stack.push(ch)
        elif ch in PAIRS:
            try:
                if stack.pop() != PAIRS[ch]:
                    return False
            except StackEmpty:
                return False
    return len(stack) == 0
