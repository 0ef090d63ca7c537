"""Funding on paper positions: each 8-hourly settlement the paper market's clock has passed while a position was
held is booked at the rate of the bundled funding history (and past its end, of the venue's settlements collect_data
stored), on the notional at that bar's open (as the backtest)."""

from typing import TYPE_CHECKING

import pandas as pd

from mcp_trader.backtest.funding import known_rates
from mcp_trader.timefmt import ms_to_iso, ms_to_time

SETTLEMENT_MS = 8 * 3_600_000

if TYPE_CHECKING:
    from mcp_trader.trading.desk import Desk
    from mcp_trader.trading.ledger import Ledger


async def settle_paper_funding(desk: "Desk", ledger: "Ledger", until: str | None = None) -> int:
    """Book the settlements due on held positions, those at or before `until` (ISO time) when given: a fill at a
    settlement's time comes after it."""
    db = desk.db
    booked = 0
    for symbol, position in (await ledger.positions(db.conn, "paper")).items():
        rates = known_rates(symbol, desk.settings.funding_dir)
        if rates is None or position.opened_at is None:
            continue
        last = await ledger.last_funding_time(db.conn, "paper", symbol)
        since = pd.Timestamp(max(filter(None, (last, position.opened_at))))
        bars = await desk.prices.bars_after(symbol, since.isoformat())
        if bars.empty:
            continue
        ms = rates.index.to_numpy()
        end = bars.index[-1] if until is None else min(bars.index[-1], pd.Timestamp(until))
        due = rates[(ms > since.value // 1_000_000) & (ms <= end.value // 1_000_000)]
        for when_ms, rate in due.items():
            when = ms_to_time(when_ms)
            if when not in bars.index:
                continue
            async with db.transaction() as conn:
                held = (await ledger.positions(conn, "paper")).get(symbol)
                if held is None:
                    break
                paid = await ledger.book_funding(conn, "paper", symbol, when.isoformat(), float(rate), held.quantity,
                                                 float(bars.loc[when, "open"]))
                booked += paid is not None
    return booked


async def uncovered(desk: "Desk", ledger: "Ledger") -> list[str]:
    """Held paper positions whose funding no known history can charge (none, or the clock is past it)."""
    db = desk.db
    notes = []
    for symbol in await ledger.positions(db.conn, "paper"):
        rates = known_rates(symbol, desk.settings.funding_dir)
        now = pd.Timestamp((await desk.prices.market(symbol)).quote.time)
        if rates is None:
            notes.append(f"{symbol}: no funding history is bundled for it, so paper charges it no funding "
                         "(collect_data fetches the venue's)")
        elif rates.index[-1] < now.value // 1_000_000 - SETTLEMENT_MS:
            last = ms_to_iso(rates.index[-1])
            notes.append(f"{symbol}: paper funding stops at {last}, where the known history ends (collect_data "
                         "extends it from the venue)")
    return notes
