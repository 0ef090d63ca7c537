"""Jobs: run long work with a bounded wait, then hand back a job id; get_job and cancel_job."""

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from mcp_trader.jobs import JobRecord, Status, Work
from mcp_trader.tools.context import home_of, tool_errors
from mcp_trader.tools.contract import Identifier

MAX_WAIT_S = 300
WaitSeconds = Annotated[
    float, Field(ge=0, le=MAX_WAIT_S, description="Seconds to wait for the result before answering with the job's "
                                                  "state (0 to 300). Keep it under your client's request timeout.")
]


class JobView(BaseModel):
    job_id: str
    kind: str
    status: Status
    progress: float = Field(description="0 to 1.")
    message: str
    result: dict[str, Any] | None = Field(None, description="The tool's answer, once the job succeeded.")
    error: str | None = None
    created_at: str
    started_at: str | None
    finished_at: str | None
    next_step: str | None = Field(None, description="What to do while the job is still running.")

    @classmethod
    def of(cls, job: JobRecord) -> "JobView":
        hint = None
        if not job.finished:
            hint = (f"still {job.status}: call get_job(job_id='{job.id}', wait_seconds=45) to wait for it, or "
                    f"cancel_job to stop it; trader://jobs/{job.id} shows its state")
        return cls(
            job_id=job.id, kind=job.kind, status=job.status, progress=job.progress, message=job.message,
            result=job.result, error=job.error, created_at=job.created_at, started_at=job.started_at,
            finished_at=job.finished_at, next_step=hint,
        )


async def run_as_job(ctx: Context, kind: str, params: dict[str, Any], work: Work, wait_seconds: float) -> JobView:
    """Start the work as a job, pass its progress on, and answer with it done or with its job id."""
    jobs = await home_of(ctx).jobs()
    job = await jobs.submit(kind, params, work)
    job = await jobs.wait(job.id, wait_seconds, on_progress=ctx.report_progress)
    if job.status == "failed":
        raise ToolError(job.error)  # failed within the call (e.g. too little data, found once it began): its error
    return JobView.of(job)


async def get_job(
    ctx: Context,
    job_id: Annotated[Identifier, Field(description="The id a long-running tool answered with.")],
    wait_seconds: WaitSeconds = 0,
) -> JobView:
    async with tool_errors():
        job = await (await home_of(ctx).jobs()).wait(job_id, wait_seconds, on_progress=ctx.report_progress)
    return JobView.of(job)


async def cancel_job(
    ctx: Context, job_id: Annotated[Identifier, Field(description="A queued or running job's id.")]
) -> JobView:
    async with tool_errors():
        job = await (await home_of(ctx).jobs()).cancel(job_id)
    return JobView.of(job)


def register(server: MCPServer, inference: bool = False) -> None:
    server.add_tool(
        get_job, title="Get a job",
        description="Read a long-running job's state: status, progress, message, and its result once it succeeded "
                    "(the same answer the tool that started it gives). Optionally wait up to wait_seconds for it "
                    "to finish, with progress notifications. Instant when wait_seconds is 0.",
        annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False),
    )
    if inference:  # no tool there starts a job; get_job still reads the home's past ones
        return
    server.add_tool(
        cancel_job, title="Cancel a job",
        description="Stop a queued or running job (training, …); it ends at its next step, within seconds, and "
                    "keeps nothing half-written. Returns the job's final state.",
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=False,
                                    openWorldHint=False),
    )
