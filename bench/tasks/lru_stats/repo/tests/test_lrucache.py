import pytest
from lrucache import LRUCache


def test_get_and_put():
    cache = LRUCache(2)
    cache.put("a", 1)
    assert cache.get("a") == 1
    assert cache.get("b", "none") == "none"


def test_least_recently_used_is_evicted():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")
    cache.put("c", 3)
    assert "b" not in cache
    assert "a" in cache and "c" in cache


def test_clear():
    cache = LRUCache(3)
    cache.put("a", 1)
    cache.clear()
    assert len(cache) == 0


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        LRUCache(0)
