"""trader://features…: stored feature sets, a set's record, its full table (CSV) and heatmap (PNG)."""

import json
from typing import TYPE_CHECKING

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from mcp_trader.errors import NotFoundError
from mcp_trader.features.models import FeatureSetRecord
from mcp_trader.home import Home

if TYPE_CHECKING:
    import pandas as pd


def register(server: MCPServer, home: Home) -> None:
    @server.resource(
        "trader://features", name="feature-sets", title="Stored feature sets", mime_type="application/json",
        description="Every stored feature set: id, timeframe, windows, symbols, span, rows, synthetic flag.",
    )
    async def list_feature_sets() -> str:
        records = await (await home.features()).records()
        rows = [
            {
                "feature_set_id": r.id, "timeframe": r.timeframe, "windows": r.windows, "symbols": r.symbols,
                "start": r.start, "end": r.end, "rows": r.rows, "synthetic": r.synthetic,
                "uri": f"trader://features/{r.id}",
            }
            for r in records
        ]
        return json.dumps({"feature_sets": rows}, indent=1)

    @server.resource(
        "trader://features/{feature_set_id}", name="feature-set", title="One feature set",
        mime_type="application/json",
        description="A feature set's record: inputs (datasets, sources, hashes), windows, columns in order, hashes.",
    )
    async def feature_set(feature_set_id: str) -> str:
        record, _ = await _load(home, feature_set_id, with_table=False)
        return record.model_dump_json(indent=1)

    @server.resource(
        "trader://features/{feature_set_id}/table.csv", name="feature-table", title="Feature table (CSV)",
        mime_type="text/csv",
        description="Every feature for every (time, symbol) with a candle, columns in the set's stable order.",
    )
    async def feature_table(feature_set_id: str) -> str:
        _, frame = await _load(home, feature_set_id)
        return await anyio.to_thread.run_sync(lambda: frame.to_csv(float_format="%.8g", date_format="%Y-%m-%dT%H:%MZ"))

    @server.resource(
        "trader://features/{feature_set_id}/heatmap.png", name="confluence-heatmap", title="Confluence heatmap",
        mime_type="image/png",
        description="Confluence score per asset over the last bars, and the assets' return correlations.",
    )
    async def heatmap(feature_set_id: str) -> bytes:
        from mcp_trader.features.charts import confluence_heatmap
        from mcp_trader.features.spec import make_spec

        record, frame = await _load(home, feature_set_id)
        spec = make_spec(record.timeframe, list(record.windows))
        return await anyio.to_thread.run_sync(confluence_heatmap, frame, spec)


async def _load(home: Home, feature_set_id: str, with_table: bool = True) -> tuple[FeatureSetRecord, "pd.DataFrame"]:
    store = await home.features()
    try:
        record = await store.record(feature_set_id)
        frame = await anyio.to_thread.run_sync(store.table, feature_set_id) if with_table else None
    except NotFoundError as error:
        raise ResourceNotFoundError(str(error)) from error
    return record, frame
