"""Long-running work as persisted jobs: progress, a bounded wait, cancellation, and honest restarts.

A job's work is an async function that receives a JobControl. Heavy parts run in worker threads
and call `control.report(fraction, message)`, which is cheap, thread-safe, and raises Cancelled
once a cancel was asked for, so loops stop at their next step. The job's row in SQLite follows
its state (throttled for progress); when a server starts, jobs that a dead process left running
are marked "interrupted", never left looking alive.
"""

import asyncio
import contextlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

from mcp_trader.errors import Cancelled, InputError, NotFoundError
from mcp_trader.store.db import Database, dumps
from mcp_trader.timefmt import now_iso

log = logging.getLogger(__name__)

Status = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
FINISHED = ("succeeded", "failed", "cancelled", "interrupted")
PERSIST_EVERY_S = 0.5
MAX_RUNNING = 1  # training saturates the cores; more jobs queue behind it
CLOSE_WAIT_S = 5.0  # on shutdown, how long live jobs get to stop at their next step


class JobRecord(BaseModel):
    id: str
    kind: str
    status: Status
    progress: float
    message: str
    params: dict[str, Any]
    result: dict[str, Any] | None = None
    error: str | None = None
    error_field: str | None = None  # set when the job failed on bad input (the field named by the error)
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class JobControl:
    def __init__(self) -> None:
        self.fraction, self.message = 0.0, "queued"
        self._cancel = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def report(self, fraction: float, message: str) -> None:
        self.fraction, self.message = min(max(fraction, self.fraction), 1.0), message
        if self._cancel.is_set():
            raise Cancelled(message)


Work = Callable[[JobControl], Awaitable[BaseModel]]
OnProgress = Callable[[float, float | None, str], Awaitable[None]]


class Jobs:
    def __init__(self, db: Database, max_running: int = MAX_RUNNING):
        self.db = db
        self._slots = asyncio.Semaphore(max_running)
        self._live: dict[str, tuple[JobControl, asyncio.Task]] = {}
        self._started: set[str] = set()  # live jobs that hold a slot

    async def recover(self) -> int:
        """Mark jobs whose process is gone as interrupted; returns how many."""
        rows = await self.db.fetch_all("SELECT id, pid FROM jobs WHERE status IN ('queued', 'running')")
        dead = [r["id"] for r in rows if r["pid"] == os.getpid() or not _alive(r["pid"])]
        for job_id in dead:
            await self._finish(job_id, "interrupted", error="the server stopped before the job finished")
        return len(dead)

    async def submit(self, kind: str, params: dict[str, Any], work: Work, exclusive: bool = True) -> JobRecord:
        """Start `work` as a job. Exclusive jobs (training, optimising…) share MAX_RUNNING slots; a job that mostly
        waits (the paper-trading loop) passes exclusive=False and runs beside them."""
        job_id = f"job-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO jobs (id, kind, status, progress, message, params, pid, created_at) "
                "VALUES (?, ?, 'queued', 0, 'queued', ?, ?, ?)",
                (job_id, kind, dumps(params), os.getpid(), now_iso()),
            )
        control = JobControl()
        task = asyncio.create_task(self._run(job_id, control, work, exclusive), name=job_id)
        self._live[job_id] = (control, task)
        return await self.get(job_id)

    async def get(self, job_id: str) -> JobRecord:
        row = await self.db.fetch_one("SELECT * FROM jobs WHERE id = ?", job_id)
        if row is None:
            raise NotFoundError(f"no job {job_id!r}; tools that run long return a job id, and trader://jobs lists them")
        return _record(row)

    async def list(self, limit: int = 50) -> list[JobRecord]:
        rows = await self.db.fetch_all("SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT ?", limit)
        return [_record(r) for r in rows]

    async def wait(self, job_id: str, timeout: float, on_progress: OnProgress | None = None) -> JobRecord:
        """Wait up to `timeout` seconds for the job to finish, passing its progress on as it changes."""
        live = self._live.get(job_id)
        if live is None:
            return await self.get(job_id)
        control, task = live
        sent = None
        deadline = asyncio.get_running_loop().time() + timeout
        while not task.done():
            # MCP: the progress value must increase with each notification, so an equal one is not sent
            if on_progress is not None and (sent is None or control.fraction > sent):
                sent = control.fraction
                await on_progress(control.fraction, 1.0, control.message)
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            await asyncio.wait({task}, timeout=min(left, 0.2))
        return await self.get(job_id)

    async def cancel(self, job_id: str) -> JobRecord:
        job = await self.get(job_id)
        if job.finished:
            raise InputError("job_id", f"job {job_id} has already finished ({job.status})", "a queued or running job")
        live = self._live.get(job_id)
        if live is None:
            raise InputError("job_id", f"job {job_id} runs in another server process", "a job of this server")
        control, task = live
        control.cancel()
        if job_id not in self._started:  # still waiting for a slot: stop it now rather than when one frees
            task.cancel()
            await asyncio.wait({task}, timeout=10)
            self._live.pop(job_id, None)  # a task cancelled before its first step never ran its own cleanup
            if not (await self.get(job_id)).finished:
                await self._finish(job_id, "cancelled", error="cancelled before it started")
        await self.wait(job_id, timeout=10)
        return await self.get(job_id)

    async def close(self) -> None:
        """On shutdown: ask every live job to stop, and mark what is still running as interrupted."""
        for control, _ in self._live.values():
            control.cancel()
        tasks = [task for _, task in self._live.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_WAIT_S)
        stuck = list(self._live.items())
        for _, (_, task) in stuck:
            task.cancel()
        if stuck:  # let them unwind first: their writes and ours share one connection
            await asyncio.wait([task for _, (_, task) in stuck], timeout=1)
        self._live.clear()
        for job_id, _ in stuck:
            if not (await self.get(job_id)).finished:
                await self._finish(job_id, "interrupted", error="the server stopped before the job finished")

    async def _run(self, job_id: str, control: JobControl, work: Work, exclusive: bool) -> None:
        try:
            async with self._slots if exclusive else contextlib.nullcontext():
                if control.cancelled:
                    await self._finish(job_id, "cancelled", error="cancelled before it started")
                    return
                self._started.add(job_id)
                await self._update(job_id, "status = 'running', started_at = ?", now_iso())
                ticker = asyncio.create_task(self._persist_progress(job_id, control))
                try:
                    result = await work(control)
                finally:
                    ticker.cancel()  # and wait: a write it is in the middle of must end before _finish's begins
                    await asyncio.wait({ticker})
        except Cancelled:
            await self._finish(job_id, "cancelled", error="cancelled on request", control=control)
        except InputError as error:
            await self._finish(job_id, "failed", error=str(error), field=error.field, control=control)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("job %s failed", job_id)
            await self._finish(job_id, "failed", error=f"{type(error).__name__}: {error}", control=control)
        else:
            await self._finish(job_id, "succeeded", result=result.model_dump(mode="json"), control=control)
        finally:
            self._live.pop(job_id, None)
            self._started.discard(job_id)

    async def _persist_progress(self, job_id: str, control: JobControl) -> None:
        seen = None
        while True:
            if (control.fraction, control.message) != seen:
                seen = (control.fraction, control.message)
                await self._update(job_id, "progress = ?, message = ?", *seen)
            await asyncio.sleep(PERSIST_EVERY_S)

    async def _finish(self, job_id: str, status: Status, result: dict | None = None, error: str | None = None,
                      field: str | None = None, control: JobControl | None = None) -> None:
        done = status == "succeeded"
        progress = 1.0 if done else (control.fraction if control else None)
        message = "done" if done else (control.message if control else status)
        await self._update(
            job_id, "status = ?, result = ?, error = ?, error_field = ?, finished_at = ?, message = ?, "
            "progress = COALESCE(?, progress)",
            status, dumps(result) if result is not None else None, error, field, now_iso(), message, progress,
        )

    async def _update(self, job_id: str, assignments: str, *params: Any) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*params, job_id))


def _record(row: dict) -> JobRecord:
    return JobRecord(
        **{k: row[k] for k in ("id", "kind", "status", "progress", "message", "error", "error_field", "created_at",
                               "started_at", "finished_at")},
        params=json.loads(row["params"]),
        result=json.loads(row["result"]) if row["result"] else None,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
