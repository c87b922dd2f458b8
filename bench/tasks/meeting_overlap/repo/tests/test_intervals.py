from datetime import datetime

from calendarkit import intervals


def at(hour, minute=0):
    return datetime(2024, 3, 4, hour, minute)


def test_overlapping_meetings():
    a = intervals.Slot(at(9), at(10, 30), "standup")
    b = intervals.Slot(at(10), at(11), "review")
    assert intervals.overlaps(a, b)


def test_back_to_back_meetings_do_not_overlap():
    a = intervals.Slot(at(9), at(10))
    b = intervals.Slot(at(10), at(11))
    assert not intervals.overlaps(a, b)
    assert not intervals.overlaps(b, a)


def test_conflicts_in_a_day():
    day = [
        intervals.Slot(at(9), at(10), "a"),
        intervals.Slot(at(10), at(11), "b"),
        intervals.Slot(at(10, 30), at(12), "c"),
    ]
    assert [(x.title, y.title) for x, y in intervals.find_conflicts(day)] == [("b", "c")]


def test_free_time():
    busy = [intervals.Slot(at(9), at(10)), intervals.Slot(at(10, 5), at(12))]
    gaps = intervals.free_slots(busy, at(8), at(13))
    assert [(g.start.hour, g.end.hour) for g in gaps] == [(8, 9), (12, 13)]
