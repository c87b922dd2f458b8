import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from listing import page_count, page_window, paginate

ITEMS = [f"item{i}" for i in range(1, 24)]


def test_page_count_rounds_up():
    assert page_count(23, 10) == 3
    assert page_count(0, 10) == 1


def test_first_page_starts_at_the_first_item():
    assert paginate(ITEMS, 1, 10) == ITEMS[:10]


def test_last_page_is_short():
    assert paginate(ITEMS, 3, 10) == ["item21", "item22", "item23"]


def test_page_past_the_end_is_empty():
    assert paginate(ITEMS, 4, 10) == []


def test_window_is_clamped_to_the_ends():
    assert page_window(1, 10) == [1, 2, 3, 4, 5]
    assert page_window(10, 10) == [6, 7, 8, 9, 10]
    assert page_window(2, 3) == [1, 2, 3]
