import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from slugs import slugify, unique_slug


def test_plain_title():
    assert slugify("Hello World") == "hello-world"


def test_accents_and_punctuation():
    assert slugify("Crème Brûlée, Done Right!") == "creme-brulee-done-right"


def test_long_title_is_cut_on_a_word_boundary():
    assert slugify("one two three four", max_length=12) == "one-two"


def test_numbers_are_kept():
    assert slugify("top 10 tips") == "top-10-tips"


def test_unique_slug_numbers_duplicates():
    assert unique_slug("My Post", {"my-post", "my-post-2"}) == "my-post-3"
