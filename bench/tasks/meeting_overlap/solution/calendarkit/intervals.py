"""Time slots as half-open intervals [start, end): a slot ending at 10:00 leaves 10:00 free."""

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, order=True)
class Slot:
    start: datetime
    end: datetime
    title: str = ""

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"slot ends before it starts: {self.start} - {self.end}")

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)


def overlaps(a: Slot, b: Slot) -> bool:
    """Whether two slots share any moment."""
    return a.start < b.end and b.start < a.end


def find_conflicts(slots: list[Slot]) -> list[tuple[Slot, Slot]]:
    """Every pair of slots that overlap, earlier slot first."""
    ordered = sorted(slots)
    conflicts = []
    for i, first in enumerate(ordered):
        for second in ordered[i + 1:]:
            if second.start > first.end:
                break
            if overlaps(first, second):
                conflicts.append((first, second))
    return conflicts


def free_slots(busy: list[Slot], day_start: datetime, day_end: datetime,
               min_minutes: int = 15) -> list[Slot]:
    """The gaps of at least `min_minutes` between busy slots within the day."""
    gaps = []
    cursor = day_start
    for slot in sorted(busy):
        if slot.start - cursor >= timedelta(minutes=min_minutes):
            gaps.append(Slot(cursor, slot.start, "free"))
        cursor = max(cursor, slot.end)
    if day_end - cursor >= timedelta(minutes=min_minutes):
        gaps.append(Slot(cursor, day_end, "free"))
    return gaps
