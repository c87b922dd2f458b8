from lrucache import LRUCache


def test_fresh_cache_stats():
    assert LRUCache(3).stats() == {"hits": 0, "misses": 0, "size": 0, "capacity": 3}


def test_hits_and_misses_are_counted():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.get("a")
    cache.get("a")
    cache.get("zzz")
    assert cache.stats() == {"hits": 2, "misses": 1, "size": 1, "capacity": 2}


def test_contains_and_put_do_not_count():
    cache = LRUCache(2)
    cache.put("a", 1)
    assert "a" in cache
    assert "b" not in cache
    assert len(cache) == 1
    assert cache.stats()["hits"] == 0
    assert cache.stats()["misses"] == 0


def test_size_stays_within_capacity():
    cache = LRUCache(2)
    for key in "abcd":
        cache.put(key, key)
    assert cache.stats()["size"] == 2


def test_clear_resets_counters():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.get("a")
    cache.get("b")
    cache.clear()
    assert cache.stats() == {"hits": 0, "misses": 0, "size": 0, "capacity": 2}
