"""Room booking helpers: time slots, conflicts and free time."""

from calendarkit.intervals import Slot, find_conflicts, free_slots, overlaps

__all__ = ["Slot", "find_conflicts", "free_slots", "overlaps"]
