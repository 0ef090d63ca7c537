"""The job runner on its own: results, failures, cancellation, a bounded wait, queueing, restarts and shutdown."""

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from mcp_trader import jobs as jobs_module
from mcp_trader.config import Settings
from mcp_trader.errors import InputError, NotFoundError
from mcp_trader.home import Home
from mcp_trader.jobs import FINISHED, JobControl, Jobs
from mcp_trader.store.db import Database

pytestmark = pytest.mark.anyio


class Answer(BaseModel):
    value: int
    label: str


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database(tmp_path / "state.db").open()
    yield database
    await database.close()


@pytest.fixture
async def jobs(db: Database) -> AsyncIterator[Jobs]:
    runner = Jobs(db)
    yield runner
    await runner.close()


async def row(db: Database, job_id: str) -> dict:
    found = await db.fetch_one("SELECT * FROM jobs WHERE id = ?", job_id)
    assert found is not None
    return found


async def until(condition, timeout: float = 3.0) -> None:
    """Poll an async condition every 20 ms until it holds, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def looping(steps: int = 1000, pause: float = 0.005):
    """Work that reports from a worker thread at every step, as training does; stops only when cancelled."""

    def loop(control: JobControl) -> Answer:
        for i in range(steps):
            control.report(i / steps, f"step {i}")
            time.sleep(pause)
        return Answer(value=steps, label="ran out")

    async def work(control: JobControl) -> Answer:
        return await asyncio.to_thread(loop, control)

    return work


def blocking(release: threading.Event, fraction: float = 0.3, message: str = "step 3"):
    """Work that reports once, then waits (in a thread) until released."""

    def block(control: JobControl) -> Answer:
        control.report(fraction, message)
        while not release.wait(0.01):
            control.report(fraction, message)
        return Answer(value=1, label="released")

    async def work(control: JobControl) -> Answer:
        return await asyncio.to_thread(block, control)

    return work


async def test_work_reports_progress_and_its_result_is_persisted(jobs: Jobs, db: Database):
    async def work(control: JobControl) -> Answer:
        for i in range(1, 4):
            control.report(i / 4, f"part {i}/3")
            await asyncio.sleep(0.25)  # wait() looks every 0.2 s
        return Answer(value=42, label="done right")

    updates = []

    async def on_progress(done: float, total: float | None, message: str) -> None:
        updates.append((done, total, message))

    job = await jobs.submit("demo", {"x": 1, "when": "2024-06-01"}, work)
    assert job.status == "queued" and job.progress == 0 and job.params == {"x": 1, "when": "2024-06-01"}
    job = await jobs.wait(job.id, timeout=5, on_progress=on_progress)
    assert job.status == "succeeded" and job.finished
    assert job.result == {"value": 42, "label": "done right"}
    assert job.progress == 1.0 and job.message == "done"
    assert job.error is None and job.error_field is None
    assert job.created_at <= job.started_at <= job.finished_at
    stored = await row(db, job.id)  # in SQLite, not only in memory
    assert stored["status"] == "succeeded" and '"value":42' in stored["result"]
    done = [u[0] for u in updates]
    assert updates and all(u[1] == 1.0 for u in updates)
    assert done == sorted(done) and len(set(done)) == len(done)  # strictly increasing, as MCP requires
    assert any("part" in u[2] for u in updates)
    assert [j.id for j in await jobs.list()] == [job.id]
    assert (await jobs.wait(job.id, timeout=5)).status == "succeeded"  # a finished job answers at once


async def test_progress_notifications_only_increase(jobs: Jobs):
    async def work(control: JobControl) -> Answer:
        for fraction, message in [(0.5, "fold 1/2: epoch 1"), (0.5, "fold 1/2: epoch 1, val loss 0.9"),
                                  (0.4, "fold 2/2: a step back is clamped"), (0.7, "fold 2/2: epoch 1")]:
            control.report(fraction, message)
            await asyncio.sleep(0.3)  # wait() looks every 0.2 s: it sees each of these
        return Answer(value=1, label="ok")

    updates = []

    async def on_progress(done: float, total: float | None, message: str) -> None:
        updates.append((done, message))

    job = await jobs.submit("demo", {}, work)
    assert (await jobs.wait(job.id, timeout=5, on_progress=on_progress)).status == "succeeded"
    # MCP: "the progress value MUST increase with each notification"; a new message alone is not sent
    assert [u[0] for u in updates] == [0.0, 0.5, 0.7]
    assert updates[1][1] == "fold 1/2: epoch 1" and updates[2][1] == "fold 2/2: epoch 1"


async def test_bad_input_fails_the_job_naming_the_field(jobs: Jobs):
    async def work(control: JobControl) -> Answer:
        control.report(0.1, "loading")
        raise InputError("days", "10 days give too few bars for 8 folds", "more days")

    job = await jobs.wait((await jobs.submit("demo", {}, work)).id, timeout=5)
    assert job.status == "failed" and job.error_field == "days"
    assert job.error.startswith("days: 10 days give too few bars") and "accepted: more days" in job.error
    assert job.result is None and job.progress == pytest.approx(0.1) and job.finished_at


async def test_an_unexpected_error_fails_the_job_with_its_message(jobs: Jobs):
    async def work(control: JobControl) -> Answer:
        raise RuntimeError("the disk is on fire")

    job = await jobs.wait((await jobs.submit("demo", {}, work)).id, timeout=5)
    assert job.status == "failed" and job.error == "RuntimeError: the disk is on fire"
    assert job.error_field is None and job.result is None


async def test_cancelling_a_running_job_stops_it_at_its_next_step(jobs: Jobs, db: Database):
    job = await jobs.submit("demo", {}, looping())
    await until(lambda: _progressed(jobs, job.id))
    started = time.monotonic()
    cancelled = await jobs.cancel(job.id)
    assert time.monotonic() - started < 2
    assert cancelled.status == "cancelled" and cancelled.error == "cancelled on request"
    assert cancelled.result is None and 0 < cancelled.progress < 1 and cancelled.message.startswith("step")
    assert (await row(db, job.id))["status"] == "cancelled"
    with pytest.raises(InputError, match="already finished") as error:
        await jobs.cancel(job.id)
    assert error.value.field == "job_id"


async def test_unknown_job_ids_are_not_found(jobs: Jobs):
    for call in (jobs.get, jobs.cancel, lambda i: jobs.wait(i, timeout=1)):
        with pytest.raises(NotFoundError, match="no job 'job-nope'"):
            await call("job-nope")


async def test_a_bounded_wait_returns_while_running_and_progress_reaches_sqlite(jobs: Jobs, db: Database):
    release = threading.Event()
    job = await jobs.submit("demo", {}, blocking(release))
    started = time.monotonic()
    waited = await jobs.wait(job.id, timeout=0.2)
    assert time.monotonic() - started < 1
    assert waited.status in ("queued", "running") and not waited.finished

    async def persisted() -> bool:
        stored = await row(db, job.id)
        return stored["status"] == "running" and stored["progress"] == pytest.approx(0.3) and \
            stored["message"] == "step 3"

    await until(persisted, timeout=1.5)  # throttled to PERSIST_EVERY_S, well within a second
    assert (await jobs.get(job.id)).started_at is not None
    release.set()
    assert (await jobs.wait(job.id, timeout=5)).status == "succeeded"


async def test_jobs_queue_behind_a_running_one(jobs: Jobs):
    assert jobs_module.MAX_RUNNING == 1
    release = threading.Event()
    first = await jobs.submit("demo", {"n": 1}, blocking(release))
    second = await jobs.submit("demo", {"n": 2}, blocking(threading.Event()))  # would block forever if it ran
    third = await jobs.submit("demo", {"n": 3}, looping(steps=5, pause=0))
    await until(lambda: _status_is(jobs, first.id, "running"))
    await asyncio.sleep(0.3)
    assert (await jobs.get(second.id)).status == "queued"
    assert (await jobs.get(third.id)).status == "queued" and (await jobs.get(third.id)).started_at is None

    started = time.monotonic()  # a queued job is cancelled at once, not once a slot frees up
    cancelled = await jobs.cancel(second.id)
    assert time.monotonic() - started < 1
    assert cancelled.status == "cancelled" and cancelled.started_at is None
    assert (await jobs.get(first.id)).status == "running"

    release.set()
    assert (await jobs.wait(first.id, timeout=5)).status == "succeeded"
    third_done = await jobs.wait(third.id, timeout=5)
    assert third_done.status == "succeeded" and third_done.result == {"value": 5, "label": "ran out"}
    assert third_done.started_at >= (await jobs.get(first.id)).finished_at
    assert [j.id for j in await jobs.list()] == [third.id, second.id, first.id]


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()  # reaped: no process has this pid now
    return process.pid


async def insert_job(db: Database, job_id: str, status: str, pid: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO jobs (id, kind, status, progress, message, params, pid, created_at, started_at) "
            "VALUES (?, 'train_model', ?, 0.4, 'fold 2/4', '{}', ?, '2024-06-01T00:00:00+00:00', "
            "'2024-06-01T00:00:01+00:00')",
            (job_id, status, pid),
        )


async def test_recover_marks_jobs_of_a_dead_process_interrupted(db: Database):
    gone = dead_pid()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        await insert_job(db, "job-running", "running", gone)
        await insert_job(db, "job-queued", "queued", gone)
        await insert_job(db, "job-done", "succeeded", gone)
        await insert_job(db, "job-elsewhere", "running", alive.pid)  # another live server's job: left alone
        jobs = Jobs(db)
        assert await jobs.recover() == 2
        for job_id in ("job-running", "job-queued"):
            job = await jobs.get(job_id)
            assert job.status == "interrupted" and job.finished_at is not None
            assert "stopped before the job finished" in job.error
            assert job.progress == pytest.approx(0.4)  # how far it got is kept
        assert (await jobs.get("job-done")).status == "succeeded"
        assert (await jobs.get("job-elsewhere")).status == "running"
        assert await jobs.recover() == 0
        await jobs.close()
    finally:
        alive.kill()
        alive.wait()


async def test_a_fresh_home_marks_what_a_stopped_server_left_running(tmp_path: Path):
    settings = Settings(home=tmp_path / "home", offline=True)
    home = Home(settings)
    await insert_job(await home.db(), "job-left", "running", dead_pid())
    await home.close()

    home = Home(settings)
    try:
        job = await (await home.jobs()).get("job-left")
        assert job.status == "interrupted" and "stopped" in job.error
    finally:
        await home.close()


async def test_close_leaves_no_job_running(db: Database, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(jobs_module, "CLOSE_WAIT_S", 0.5)

    async def stubborn(control: JobControl) -> Answer:  # never reports, so it never sees the cancel
        await asyncio.sleep(60)
        return Answer(value=0, label="never")

    jobs = Jobs(db, max_running=2)
    polite = await jobs.submit("demo", {}, looping())
    deaf = await jobs.submit("demo", {}, stubborn)
    waiting = await jobs.submit("demo", {}, looping())
    await until(lambda: _progressed(jobs, polite.id))
    await until(lambda: _status_is(jobs, deaf.id, "running"))
    assert (await jobs.get(waiting.id)).status == "queued"
    started = time.monotonic()
    await jobs.close()
    assert time.monotonic() - started < 3
    states = {j.id: j.status for j in await Jobs(db).list()}
    assert all(status in FINISHED for status in states.values()), states
    assert states[polite.id] == "cancelled"
    assert states[deaf.id] == "interrupted"
    assert states[waiting.id] in ("cancelled", "interrupted")
    rows = await db.fetch_all("SELECT status FROM jobs WHERE status IN ('queued', 'running')")
    assert rows == []


async def _progressed(jobs: Jobs, job_id: str) -> bool:
    job = await jobs.get(job_id)
    return job.status == "running" and job.progress > 0


async def _status_is(jobs: Jobs, job_id: str, status: str) -> bool:
    return (await jobs.get(job_id)).status == status
