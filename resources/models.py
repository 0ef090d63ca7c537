"""trader://models…: trained models, a model's full training report, and its feature importances."""

import json

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from mcp_trader.errors import NotFoundError
from mcp_trader.home import Home


def register(server: MCPServer, home: Home) -> None:
    @server.resource(
        "trader://models", name="models", title="Trained models", mime_type="application/json",
        description="Every trained model, newest first: id, kind, variant, symbols, horizon, verdict, log loss, IC.",
    )
    async def list_models() -> str:
        from mcp_trader.models.listing import ModelListing
        records = await (await home.models()).records()
        rows = [ModelListing.of(r).model_dump() for r in records]
        return json.dumps({"models": rows}, indent=1)

    @server.resource(
        "trader://models/{model_id}", name="model-report", title="Training report", mime_type="application/json",
        description="A model's full record: data ids and hashes, features in order, parameters, walk-forward "
                    "folds with per-class metrics and baselines, the verdict, device, time and versions.",
    )
    async def report(model_id: str) -> str:
        return (await _record(home, model_id)).model_dump_json(indent=1)

    @server.resource(
        "trader://models/{model_id}/feature-importances.json", name="feature-importances",
        title="Feature importances", mime_type="application/json",
        description="Per feature, most important first: share of XGBoost's split gain and mean |SHAP| value.",
    )
    async def importances(model_id: str) -> str:
        record = await _record(home, model_id)
        rows = [i.model_dump() for i in record.importances]
        note = None if rows else f"a {record.kind} model has no feature importances; XGBoost and ensembles do"
        return json.dumps({"model_id": model_id, "importances": rows, "note": note}, indent=1)

    @server.resource(
        "trader://models/{model_id}/feature-importances.png", name="feature-importances-chart",
        title="Feature importance chart", mime_type="image/png",
        description="Bar chart of the top 20 features by gain share and by mean |SHAP|.",
    )
    async def importance_chart(model_id: str) -> bytes:
        from mcp_trader.models.charts import importance_chart as chart

        record = await _record(home, model_id)
        if not record.importances:
            raise ResourceNotFoundError(f"model {model_id} ({record.kind}) has no feature importances")
        title = f"{record.id}: {record.kind}, {record.variant}, {record.timeframe}"
        return await anyio.to_thread.run_sync(chart, record.importances, title)


async def _record(home: Home, model_id: str):
    try:
        return await (await home.models()).record(model_id)
    except NotFoundError as error:
        raise ResourceNotFoundError(str(error)) from error
