import pytest
from jobqueue import JobQueue


def names(queue):
    return [job.name for job in queue.drain()]


def test_higher_priority_runs_first():
    q = JobQueue()
    q.push("docs", 1)
    q.push("release", 5)
    assert q.pop().name == "release"


def test_equal_priorities_are_first_in_first_out():
    q = JobQueue()
    for name in ("a", "b", "c"):
        q.push(name)
    assert names(q) == ["a", "b", "c"]


def test_mixed_order():
    q = JobQueue()
    q.push("lint", 1)
    q.push("build", 3)
    q.push("test", 1)
    q.push("deploy", 3)
    assert names(q) == ["build", "deploy", "lint", "test"]


def test_empty_queue():
    q = JobQueue()
    assert len(q) == 0
    with pytest.raises(IndexError):
        q.pop()
