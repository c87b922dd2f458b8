import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from receipt import format_cents, receipt, receipt_line


def test_whole_and_two_digit_cents():
    assert format_cents(123456) == "$1,234.56"


def test_single_digit_cents_are_padded():
    assert format_cents(505) == "$5.05"


def test_zero_cents():
    assert format_cents(700) == "$7.00"


def test_negative_amount():
    assert format_cents(-1999) == "-$19.99"


def test_line_is_right_aligned():
    assert receipt_line("Milk", 129, width=16) == "Milk       $1.29"


def test_receipt_total():
    text = receipt([("Tea", 350), ("Scone", 255)], width=16)
    assert text.splitlines()[-1] == "TOTAL      $6.05"
