"""One trading desk per home: made on first use from the home's ledger, database and candle prices, and closed
with the home (its venue connections before the database)."""

from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from mcp_trader.trading.desk import Desk
from mcp_trader.trading.prices import StorePrices

if TYPE_CHECKING:
    from mcp_trader.home import Home

_desks: "WeakKeyDictionary[Home, Desk]" = WeakKeyDictionary()


async def desk_of(home: "Home") -> Desk:
    desk = _desks.get(home)
    if desk is None:
        prices = StorePrices(await home.catalog(), home.candles, home.settings.trading_timeframe)
        made = Desk(home.settings, await home.db(), await home.ledger(), prices)
        desk = _desks.setdefault(home, made)  # another task may have made one while this one awaited
        if desk is made:
            home.on_close(lambda: _close(home))
    return desk


async def _close(home: "Home") -> None:
    desk = _desks.pop(home, None)
    if desk is not None:
        await desk.close()
