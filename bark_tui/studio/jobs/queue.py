"""The running job and the capped list of jobs that wait, first in first out.

The panel shows both, a full queue says so, and a held queue (after a take that
could not be stored, or one put back from the last session) waits for ctrl+g.
"""

from __future__ import annotations

from collections import deque

from ...core.job import Job

MAX_WAITING = 4  # generate requests that may wait behind the running one


class GenerationQueue:
    """The running job plus up to ``capacity`` waiting ones, first in first out."""

    def __init__(self, capacity: int = MAX_WAITING) -> None:
        self.capacity = capacity
        self.running: Job | None = None
        self.waiting: deque[Job] = deque()

    @property
    def full(self) -> bool:
        return len(self.waiting) >= self.capacity

    @property
    def busy(self) -> bool:
        return self.running is not None

    def submit(self, job: Job) -> str:
        """"start" (nothing ran: caller starts ``self.running``), "queued", "full"
        (refused), or "resumed-full". A held queue goes on with its oldest job and
        ``job`` waits behind it; "resumed-full" when there is no room for it even then
        (a queue put back from the last session may hold one job more than its
        capacity): the caller starts ``self.running`` and ``job`` is refused."""
        if self.resume() is not None:  # held: its oldest job starts
            if self.full:
                return "resumed-full"
            self.waiting.append(job)
            return "start"
        if self.running is None:
            self.running = job
            return "start"
        if self.full:
            return "full"
        self.waiting.append(job)
        return "queued"

    @property
    def held(self) -> bool:
        """Jobs wait but none runs: after a take that could not be stored, or put back
        from the last session. `resume` (ctrl+g) goes on with them."""
        return self.running is None and bool(self.waiting)

    def resume(self) -> Job | None:
        """Start the oldest waiting job of a held queue (now running); None if not held."""
        if not self.held:
            return None
        self.running = self.waiting.popleft()
        return self.running

    def finish(self, job: Job, hold: bool = False) -> Job | None:
        """Mark ``job`` done; return the next job to start (now running), if any. With
        ``hold`` (a take could not be stored: the disk is full) the waiting jobs stay
        where they are until the next `submit`."""
        if self.running is job:
            self.running = None
        if self.running is None and self.waiting and not hold:
            self.running = self.waiting.popleft()
            return self.running
        return None

    def cancel_running(self) -> Job | None:
        """Ask the running job to stop; waiting jobs stay."""
        if self.running is not None:
            self.running.cancel.set()
        return self.running

    def clear_waiting(self) -> int:
        """Drop every waiting job; returns how many."""
        count = len(self.waiting)
        self.waiting.clear()
        return count

    def cancel_all(self) -> None:
        """Stop everything (quitting): the worker sees its event within a token."""
        for job in self.waiting:
            job.cancel.set()
        self.waiting.clear()
        self.cancel_running()
