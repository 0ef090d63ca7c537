"""export_onnx and list_exports: a trained model as ONNX graphs, with the certificate of their parity and speed."""

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_trader.export.records import ExportListing, ExportRequest
from mcp_trader.tools.context import home_of, tool_errors
from mcp_trader.tools.contract import Identifier
from mcp_trader.tools.jobs import JobView, WaitSeconds, run_as_job

DESCRIPTION = """Export a trained model to ONNX for cheap inference, and certify that it predicts what the model does.

Use it after train_model, for a model worth running on live bars: the ONNX predictor serves its signals without
torch or xgboost, on CUDA / TensorRT when ONNX Runtime has them, else the CPU. XGBoost becomes one tree-ensemble
graph, the LSTM a graph with a dynamic batch axis, an ensemble both (blended with its saved weight); each graph
outputs the calibrated probabilities. With validate=true (the default) ONNX Runtime is compared with the native
model on the model's last walk-forward test rows: a relative difference of 0.1 % or more in any probability or
prediction refuses the export, with the figure, and nothing is kept. Cost: seconds (XGBoost about 1 s, an LSTM
a few more for the torch exporter and the latency runs). Runs as a job: waits up to wait_seconds, then answers
with a job id for get_job. The result, the certificate: export id, ONNX file hashes, the input schema (feature
names in order, shapes, dtype; for the LSTM seq_len and the presence channel), opsets, parity figures, latency
of ONNX Runtime vs the native model (one row and 1,000 rows, p50/p99 ms), execution providers, versions;
trader://exports/{export_id} serves it again."""


async def export_onnx(
    ctx: Context,
    model_id: Annotated[Identifier, Field(description="A model from train_model / list_models.")],
    validate: Annotated[
        bool, Field(description="Check parity on held-out rows and measure latency. false skips both and the "
                                "certificate says so (validated: false, parity: null).")
    ] = True,
    kind: Annotated[
        Literal["xgboost", "lstm", "ensemble"] | None,
        Field(description="What to export: the model's own kind (default), or 'xgboost' / 'lstm' for one part of "
                          "an ensemble."),
    ] = None,
    wait_seconds: WaitSeconds = 45,
) -> JobView:
    from mcp_trader.export.exporter import check_request, export_model  # onnx, numpy & co. load on first call

    home = home_of(ctx)
    async with tool_errors():
        request = ExportRequest(model_id=model_id, kind=kind, check_parity=validate)
        await check_request(home, request)  # unknown model or kind: a tool error now, not a failed job

        async def work(control):
            return await export_model(home, request, control.report)

        return await run_as_job(ctx, "export_onnx", request.model_dump(mode="json"), work, wait_seconds)


async def list_exports(ctx: Context) -> list[ExportListing]:
    records = await (await home_of(ctx).exports()).records()
    return [ExportListing.of(r) for r in records]


def register(server: MCPServer, inference: bool = False) -> None:
    if not inference:  # exporting needs the native learner (xgboost, torch)
        server.add_tool(
            export_onnx, title="Export a model to ONNX", description=DESCRIPTION,
            annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False,
                                        openWorldHint=False),
        )
    server.add_tool(
        list_exports, title="List ONNX exports",
        description="Every ONNX export, newest first: export id, model id, kind, whether it was validated and "
                    "passed parity, its max relative difference, and its certificate URI. Instant.",
        annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False),
    )
