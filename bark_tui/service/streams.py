"""Waiting on a job from a request handler: until it is ready, as a stream of its
segments, or as an HTTP error when it failed. A client that goes away
(disconnects, or closes the stream) cancels the job.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from fastapi import Request

from .board import JobBoard
from .gate import ApiError
from .job import Job
from .work import SegmentResult

log = logging.getLogger("bark_tui.serve")

DISCONNECT_CHECK_S = 0.25  # how often a whole-file response looks whether its client left
SSE_PING_S = 10.0  # a comment line keeps proxies and tunnels from closing a quiet stream


def raise_for(job: Job, waiting_ok: bool = True) -> None:
    """The job's failure as an HTTP error (a finished, good job passes)."""
    if not job.finished:
        if waiting_ok:
            return
        raise ApiError(409, f"job {job.id} is {job.state}; its audio is not ready")
    if job.state == "cancelled":
        raise ApiError(409, f"job {job.id} was cancelled")
    if job.error:
        status = 400 if job.error["type"] == "invalid_request_error" else 500
        raise ApiError(status, job.error["message"])


async def until(job: Job, board: JobBoard, request: Request, ready) -> None:
    """Wait until `ready()` (checked at each of the job's events); a client that goes
    away meanwhile cancels the job."""
    while not ready():
        if await request.is_disconnected():
            board.cancel(job)
            return
        await job.changed(len(job.events), DISCONNECT_CHECK_S)


async def segments(job: Job, board: JobBoard) -> AsyncIterator[SegmentResult]:
    """The job's segments in script order as they finish. A failure after the first
    segment ends the stream early (the status is already sent; the log says why).
    Closing the stream (the client went away) cancels the job."""
    sent = 0
    try:
        while True:
            seen = len(job.events)
            while sent < len(job.order):
                yield job.segments[job.order[sent]]
                sent += 1
            if job.finished and sent >= len(job.order):
                if job.error:
                    log.warning("job %s ended with an error mid-stream: %s", job.id,
                                job.error["message"])
                return
            await job.changed(seen, SSE_PING_S)
    finally:
        if not job.finished:
            board.cancel(job)
