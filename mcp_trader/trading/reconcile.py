"""On start, live positions on the venue against the ledger's: differences are recorded and reported, never
silently adopted (a person may have traded the account elsewhere)."""

import logging
from typing import TYPE_CHECKING, Any

from mcp_trader.trading.broker import Broker

if TYPE_CHECKING:
    from mcp_trader.trading.desk import Desk
    from mcp_trader.trading.ledger import Ledger

log = logging.getLogger(__name__)
TOLERANCE = 1e-9


async def reconcile_positions(desk: "Desk", ledger: "Ledger", broker: Broker) -> dict[str, Any]:
    db = desk.db
    venue = {p.symbol: p.quantity for p in await broker.positions()}
    ours = {s: p.quantity for s, p in (await ledger.positions(db.conn, "live")).items()}
    differences = [
        {"symbol": s, "venue": venue.get(s, 0.0), "ledger": ours.get(s, 0.0)}
        for s in sorted(set(venue) | set(ours)) if abs(venue.get(s, 0.0) - ours.get(s, 0.0)) > TOLERANCE
    ]
    balance = await broker.balance()
    report = {"positions_checked": len(set(venue) | set(ours)), "differences": differences, "venue_balance": balance}
    async with db.transaction() as conn:
        if not await ledger.has_account(conn, "live") and not ours:
            # The live account's ledger starts from the venue's wallet balance the first time it is used.
            start = (await ledger.account(conn, "live")).model_copy(update={"start_balance": balance, "cash": balance})
            await ledger.save_account(conn, start)
        await ledger.note_reconciliation(conn, "live", report)
    if differences:
        log.warning("live positions differ from the ledger: %s", differences)
    return report
