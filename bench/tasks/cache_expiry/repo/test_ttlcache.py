from ttlcache import ExpiringCache


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_value_is_there_before_it_expires():
    clock = FakeClock()
    cache = ExpiringCache(ttl_ms=1500, clock=clock)
    cache.set("user:1", "ada")
    clock.now += 1.0
    assert cache.get("user:1") == "ada"


def test_value_is_gone_after_the_ttl():
    clock = FakeClock()
    cache = ExpiringCache(ttl_ms=1500, clock=clock)
    cache.set("user:1", "ada")
    clock.now += 2.0
    assert cache.get("user:1", "expired") == "expired"


def test_purge_counts_expired_entries():
    clock = FakeClock()
    cache = ExpiringCache(ttl_ms=200, clock=clock)
    cache.set("a", 1)
    cache.set("b", 2)
    clock.now += 0.5
    cache.set("c", 3)
    assert cache.purge() == 2
    assert len(cache) == 1
