"""trader://datasets and trader://datasets/{dataset_id}: what is stored, and one dataset in full."""

import json

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from mcp_trader.errors import NotFoundError
from mcp_trader.home import Home


def register(server: MCPServer, home: Home) -> None:
    @server.resource(
        "trader://datasets", name="datasets", title="Stored datasets", mime_type="application/json",
        description="Every stored candle dataset: id, symbol, timeframe, source, rows, span, synthetic flag.",
    )
    async def list_datasets() -> str:
        records = await (await home.catalog()).datasets()
        rows = [
            {
                "dataset_id": r.id, "symbol": r.symbol, "timeframe": r.timeframe, "source": r.source,
                "market": r.market, "rows": r.rows, "first": r.first_time, "last": r.last_time,
                "synthetic": r.synthetic, "uri": f"trader://datasets/{r.id}",
            }
            for r in records
        ]
        return json.dumps({"datasets": rows}, indent=1)

    @server.resource(
        "trader://datasets/{dataset_id}", name="dataset", title="One dataset", mime_type="application/json",
        description="A dataset's summary, provenance (source and fetch time of each range) and quality report.",
    )
    async def dataset_summary(dataset_id: str) -> str:
        try:
            record = await (await home.catalog()).dataset(dataset_id)
        except NotFoundError as error:
            raise ResourceNotFoundError(str(error)) from error
        return record.model_dump_json(indent=1)
