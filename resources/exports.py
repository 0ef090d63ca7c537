"""trader://exports…: ONNX exports and an export's certificate."""

import json

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from mcp_trader.errors import NotFoundError
from mcp_trader.home import Home


def register(server: MCPServer, home: Home) -> None:
    @server.resource(
        "trader://exports", name="exports", title="ONNX exports", mime_type="application/json",
        description="Every ONNX export, newest first: id, model, kind, validated, parity passed, max relative "
                    "difference.",
    )
    async def list_exports() -> str:
        from mcp_trader.export.records import ExportListing

        records = await (await home.exports()).records()
        return json.dumps({"exports": [ExportListing.of(r).model_dump() for r in records]}, indent=1)

    @server.resource(
        "trader://exports/{export_id}", name="export-certificate", title="ONNX export certificate",
        mime_type="application/json",
        description="An export's certificate: model id, ONNX file hashes, input schema (features in order, shapes, "
                    "dtype, seq_len, presence channel), opsets, parity on held-out rows, latency of ONNX Runtime "
                    "vs the native model, execution providers, versions.",
    )
    async def certificate(export_id: str) -> str:
        try:
            record = await (await home.exports()).record(export_id)
        except NotFoundError as error:
            raise ResourceNotFoundError(str(error)) from error
        return record.model_dump_json(indent=1)


