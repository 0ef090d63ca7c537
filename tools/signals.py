"""get_signals: a model's or the confluence rule's BUY / HOLD / SELL at the latest bar, as a backtest decides it."""

from datetime import datetime
from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_trader.backtest.params import DEFAULT_MARGIN
from mcp_trader.tools.backtest import ModelId, Strategy
from mcp_trader.tools.context import home_of, tool_errors
from mcp_trader.tools.contract import CostMargin, EdgeChoice, SymbolList
from mcp_trader.tools.data import Market, Sources, Timeframe
from mcp_trader.trading.signals import SignalReport, SignalRequest

DESCRIPTION = """The current trading signal of a trained model, or of the confluence rule, for each of its assets.

Use it to see what a model says now (or at a past bar with as_of) before paper or live trading, or to check
a signal by hand. The decision at a bar is exactly the one run_backtest makes there (signals='after_training',
or strategy='confluence'): the same features, model, rule and ATR, decided at the bar's close from candles up
to it; a backtest fills it at the next bar's open. It reads only stored candles (run collect_data first for
fresh bars), and only the recent ones the features need (about 2,000 bars), so a call takes a fraction of a
second once the model's libraries are loaded (the first call in a server loads them: seconds). A model runs
on its newest validated ONNX export when it has one (use_onnx='auto'), else its own learner. The result,
per symbol: BUY, HOLD or SELL, the confidence (the most likely class's probability, or |confluence score|),
the SELL/HOLD/BUY probabilities, the bar's open time and close, and ATR(14) for stops and sizing; with the
model id, the predictor used (onnx:<export_id> or native), the candle datasets read, whether they are
synthetic, and whether the bar lies inside the model's training data (in_sample)."""


Symbols = Annotated[
    SymbolList | None,
    Field(description="A model: a subset of its symbols (default all). Confluence: required, two to 50; BTC "
                      "joins the feature universe as the reference."),
]
SignalTimeframe = Annotated[Timeframe | None, Field(description="Bar size; a model's own, 1h for confluence.")]
MinConfidence = Annotated[
    float, Field(ge=0, le=1, description="A model's BUY/SELL needs that class most likely and this likely.")
]
Threshold = Annotated[float, Field(gt=0, le=1, description="Confluence score to act on (0 to 1).")]
AsOf = Annotated[
    datetime | None,
    Field(description="Decide at the latest stored bar opened at or before this time, ISO 8601, UTC if no "
                      "zone. Default: the latest stored bar."),
]


async def get_signals(
    ctx: Context,
    model_id: ModelId = None,
    strategy: Strategy = None,
    symbols: Symbols = None,
    timeframe: SignalTimeframe = None,
    min_confidence: MinConfidence = 0.5,
    threshold: Threshold = 0.5,
    as_of: AsOf = None,
    use_onnx: Annotated[
        Literal["auto", "always", "never"],
        Field(description="auto: the model's newest validated ONNX export if any, else its native learner; "
                          "always: an export or an error; never: the native learner."),
    ] = "auto",
    sources: Sources = None,
    market: Market = "perp",
    cost_margin: CostMargin = DEFAULT_MARGIN,
    edge: EdgeChoice = "validated",
) -> SignalReport:
    from mcp_trader.trading.signals import latest_signals  # numpy, pandas & co. load on first call

    async with tool_errors():
        request = SignalRequest(
            model_id=model_id, strategy=strategy, symbols=symbols, timeframe=timeframe,
            min_confidence=min_confidence, threshold=threshold, as_of=as_of, use_onnx=use_onnx, sources=sources,
            market=market, cost_margin=cost_margin, edge=edge,
        )
        return await latest_signals(home_of(ctx), request)


INFERENCE_NOTE = """

This server is an inference service: a model always runs on its newest ONNX export (an unvalidated one only when
there is no validated one, with a note), never on its native learner; a model without an export is an error. Export
it with export_onnx on a training server and copy the export into this server's home."""


async def get_onnx_signals(
    ctx: Context,
    model_id: ModelId = None,
    strategy: Strategy = None,
    symbols: Symbols = None,
    timeframe: SignalTimeframe = None,
    min_confidence: MinConfidence = 0.5,
    threshold: Threshold = 0.5,
    as_of: AsOf = None,
    sources: Sources = None,
    market: Market = "perp",
    cost_margin: CostMargin = DEFAULT_MARGIN,
    edge: EdgeChoice = "validated",
) -> SignalReport:
    """get_signals of an inference service: ONNX exports only, so the native learners (torch, xgboost) never load."""
    from mcp_trader.errors import InputError
    from mcp_trader.trading.signals import latest_signals

    async with tool_errors():
        request = SignalRequest(
            model_id=model_id, strategy=strategy, symbols=symbols, timeframe=timeframe,
            min_confidence=min_confidence, threshold=threshold, as_of=as_of, use_onnx="always", sources=sources,
            market=market, cost_margin=cost_margin, edge=edge,
        )
        try:
            return await latest_signals(home_of(ctx), request)
        except InputError as error:
            if error.field != "use_onnx":
                raise
            raise InputError("model_id", f"{error.problem}, and this inference service runs ONNX exports only",
                             "a model listed by list_exports; run export_onnx on a training server (mcp-trader "
                             "serve without --inference) and copy the export into this server's home") from None


get_onnx_signals.withheld = {"use_onnx": "this inference service always runs a model's ONNX export; leave it out"}


def register(server: MCPServer, inference: bool = False) -> None:
    tool, description = (get_onnx_signals, DESCRIPTION + INFERENCE_NOTE) if inference else (get_signals, DESCRIPTION)
    server.add_tool(
        tool, name="get_signals", title="Get the latest signals", description=description,
        annotations=ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True,
                                    openWorldHint=False),
    )
