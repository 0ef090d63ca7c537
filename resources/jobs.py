"""trader://jobs and trader://jobs/{job_id}: long-running work and its state."""

import json

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from mcp_trader.errors import NotFoundError
from mcp_trader.home import Home


def register(server: MCPServer, home: Home) -> None:
    @server.resource(
        "trader://jobs", name="jobs", title="Jobs", mime_type="application/json",
        description="The latest 50 jobs, newest first: id, kind, status, progress, message, times.",
    )
    async def list_jobs() -> str:
        jobs = await (await home.jobs()).list()
        rows = [j.model_dump(exclude={"params", "result"}) | {"uri": f"trader://jobs/{j.id}"} for j in jobs]
        return json.dumps({"jobs": rows}, indent=1)

    @server.resource(
        "trader://jobs/{job_id}", name="job", title="One job", mime_type="application/json",
        description="A job's state: status (queued, running, succeeded, failed, cancelled, interrupted), progress, "
                    "message, parameters, and its result or error.",
    )
    async def job(job_id: str) -> str:
        try:
            record = await (await home.jobs()).get(job_id)
        except NotFoundError as error:
            raise ResourceNotFoundError(str(error)) from error
        return record.model_dump_json(indent=1)
