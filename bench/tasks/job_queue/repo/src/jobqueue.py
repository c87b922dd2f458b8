"""An in-memory job queue for the build farm: highest priority first, FIFO among equals."""

import itertools
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    name: str
    priority: int
    seq: int  # order of arrival, to keep equal priorities first-in first-out


class JobQueue:
    """Jobs waiting for a build agent. Small (tens of jobs), so a list scan is fine."""

    def __init__(self) -> None:
        self._jobs: list[Job] = []
        self._arrivals = itertools.count()

    def __len__(self) -> int:
        return len(self._jobs)

    def push(self, name: str, priority: int = 0) -> Job:
        """Queue a job; a larger priority runs sooner."""
        job = Job(name, priority, next(self._arrivals))
        self._jobs.append(job)
        return job

    @staticmethod
    def _runs_before(a: Job, b: Job) -> bool:
        """Whether `a` should run before `b`."""
        if a.priority != b.priority:
            return a.priority > b.priority
        return a.seq > b.seq

    def peek(self) -> Job:
        """The job that would run next; IndexError when the queue is empty."""
        if not self._jobs:
            raise IndexError("peek at an empty job queue")
        best = self._jobs[0]
        for job in self._jobs[1:]:
            if self._runs_before(job, best):
                best = job
        return best

    def pop(self) -> Job:
        """Remove and return the job that runs next."""
        job = self.peek()
        self._jobs.remove(job)
        return job

    def drain(self) -> Iterator[Job]:
        """Pop every job, in running order."""
        while self._jobs:
            yield self.pop()
