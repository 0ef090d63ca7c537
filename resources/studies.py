"""trader://studies…: optimisation studies, a study's summary, its trial history and parameter importances."""

import json

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from mcp_trader.errors import InputError, NotFoundError
from mcp_trader.home import Home


def register(server: MCPServer, home: Home) -> None:
    @server.resource(
        "trader://studies", name="studies", title="Optimisation studies", mime_type="application/json",
        description="Every study this home ran, latest first: name, target, symbols, timeframe, storage.",
    )
    async def list_studies() -> str:
        from mcp_trader.optimize.study import redacted

        rows = [{"study": r["name"], "created_at": r["created_at"], "updated_at": r["updated_at"],
                 "storage": redacted(r["storage"]), **_setup(r["record"]), "uri": f"trader://studies/{r['name']}"}
                for r in await (await home.studies()).studies()]
        return json.dumps({"studies": rows}, indent=1)

    @server.resource(
        "trader://studies/{name}", name="study", title="Study summary", mime_type="application/json",
        description="Trials tried, best settings and out-of-sample Sharpe, the deflated Sharpe ratio and the "
                    "probability of a fluke, parameter importances, and how to join or open it.",
    )
    async def summary(name: str) -> str:
        from mcp_trader.optimize.study import config_of, summarise

        study, url = await _study(home, name)
        return summarise(study, config_of(study), url, ran=0).model_dump_json(indent=1)

    @server.resource(
        "trader://studies/{name}/trials", name="study-trials", title="Trial history", mime_type="application/json",
        description="Every trial: number, state, out-of-sample Sharpe, parameters, per-fold Sharpes, worker.",
    )
    async def trials(name: str) -> str:
        from mcp_trader.optimize.study import trial_rows

        study, _ = await _study(home, name)
        return json.dumps({"study": name, "trials": [r.model_dump() for r in trial_rows(study)]}, indent=1)

    @server.resource(
        "trader://studies/{name}/trials.png", name="study-trials-chart", title="Trial history chart",
        mime_type="image/png", description="Each trial's out-of-sample Sharpe, the pruned ones, and the best so far.",
    )
    async def trials_chart(name: str) -> bytes:
        from mcp_trader.optimize.charts import trials_chart as chart
        from mcp_trader.optimize.study import trial_rows

        study, _ = await _study(home, name)
        return await anyio.to_thread.run_sync(chart, trial_rows(study), f"study {name}")

    @server.resource(
        "trader://studies/{name}/importances", name="study-importances", title="Parameter importances",
        mime_type="application/json", description="How much each parameter explains the Sharpe (PED-ANOVA).",
    )
    async def importances(name: str) -> str:
        from mcp_trader.optimize.study import importances as compute

        study, _ = await _study(home, name)
        values = await anyio.to_thread.run_sync(compute, study)
        note = None if values else "too few completed trials (at least 4) to rank the parameters"
        return json.dumps({"study": name, "importances": values, "note": note}, indent=1)

    @server.resource(
        "trader://studies/{name}/importances.png", name="study-importances-chart", title="Parameter importance chart",
        mime_type="image/png", description="Bar chart of the parameter importances.",
    )
    async def importances_chart(name: str) -> bytes:
        from mcp_trader.optimize.charts import importances_chart as chart
        from mcp_trader.optimize.study import importances as compute

        study, _ = await _study(home, name)
        values = await anyio.to_thread.run_sync(compute, study)
        if not values:
            raise ResourceNotFoundError(f"study {name} has too few completed trials to rank its parameters")
        return await anyio.to_thread.run_sync(chart, values, f"study {name}")


def _setup(record: str) -> dict:
    config = json.loads(record)
    return {k: config.get(k) for k in ("target", "symbols", "timeframe", "folds", "synthetic")}


async def _study(home: Home, name: str):
    from mcp_trader.optimize.study import load, open_storage

    try:
        url = await (await home.studies()).url(name)
        return await anyio.to_thread.run_sync(lambda: load(open_storage(url), name)), url
    except (NotFoundError, InputError) as error:
        raise ResourceNotFoundError(str(error)) from error
