import pytest
from structs import brackets
from structs.stack import Stack, StackEmpty


def test_push_pop():
    s = Stack()
    s.push(1)
    s.push(2)
    assert s.pop() == 2
    assert s.peek() == 1


def test_empty_stack_raises_its_own_error():
    with pytest.raises(StackEmpty):
        Stack().pop()
    with pytest.raises(StackEmpty):
        Stack().peek()


def test_balanced():
    assert brackets.balanced("f(a[1], {b: 2})")
    assert not brackets.balanced("(]")
    assert not brackets.balanced("((")


def test_extra_closing_bracket():
    assert not brackets.balanced("())")
