"""A market's trading rules (Aster's exchangeInfo filters): rounding to step and tick, minimum size and notional."""

import json
import math
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel

from mcp_trader.errors import InputError

MIN_NOTIONAL_DEFAULT = 5.0  # USDT; Aster's usual MIN_NOTIONAL ("must be no smaller than 5.0")


class MarketRules(BaseModel, frozen=True):
    symbol: str  # unified perpetual, BTC/USDT:USDT
    venue_symbol: str  # BTCUSDT
    tick_size: float
    step_size: float
    min_quantity: float
    max_quantity: float
    market_step_size: float
    market_max_quantity: float
    min_notional: float
    source: str  # "aster exchangeInfo" or "bundled defaults"
    percent_up: float | None = None  # PERCENT_PRICE: a buy limit at most this multiple of the mark…
    percent_down: float | None = None  # …a sell limit at least this one

    def step(self, market: bool) -> float:
        return self.market_step_size if market else self.step_size

    def floor_quantity(self, quantity: float, market: bool) -> float:
        """Quantity truncated to the step, as the venue (and ccxt) would."""
        return _floor(quantity, self.step(market))

    def check_price(self, price: float) -> float:
        if not _on_grid(price, self.tick_size):
            raise InputError(
                "price", f"{price} is off the tick {_text(self.tick_size)} of {self.symbol}",
                f"a multiple of {_text(self.tick_size)}, such as {_text(_floor(price, self.tick_size))}",
            )
        return price

    def check_band(self, side: str, price: float, mark: float) -> None:
        """The venue's PERCENT_PRICE band around the mark price (it refuses limits outside it)."""
        if side == "buy" and self.percent_up and price > mark * self.percent_up:
            raise InputError("price", f"a buy limit at {price:g} is over {self.percent_up:g} × the price {mark:g}",
                             f"at most {_text(_floor(mark * self.percent_up, self.tick_size))}")
        if side == "sell" and self.percent_down and price < mark * self.percent_down:
            lowest = _floor(mark * self.percent_down, self.tick_size) + self.tick_size
            raise InputError("price", f"a sell limit at {price:g} is under {self.percent_down:g} × the price "
                                      f"{mark:g}", f"at least {_text(lowest)}")

    def check_quantity(self, quantity: float, market: bool, requested: float) -> float:
        top = self.market_max_quantity if market else self.max_quantity
        if quantity < self.min_quantity or quantity <= 0:
            raise InputError(
                "quantity",
                f"{requested:g} rounds to {quantity:g} {self.base}, under the minimum {_text(self.min_quantity)}",
                f"at least {_text(self.min_quantity)} {self.base} in steps of {_text(self.step(market))}",
            )
        if quantity > top:
            raise InputError("quantity", f"{quantity:g} {self.base} is over the venue's maximum {_text(top)}",
                             f"at most {_text(top)}")
        return quantity

    def check_notional(self, quantity: float, price: float, reduce_only: bool) -> None:
        notional = quantity * price
        if not reduce_only and notional < self.min_notional:
            raise InputError(
                "quantity", f"the order's notional {notional:.2f} USDT is under {self.symbol}'s minimum "
                            f"{self.min_notional:g} USDT", f"at least {self.min_notional:g} USDT (or reduce_only=true)",
            )

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]


def from_exchange_info(entry: dict[str, Any], source: str = "aster exchangeInfo") -> MarketRules:
    """Rules from one `symbols[]` entry of /fapi/v3/exchangeInfo (numbers arrive as strings)."""
    filters = {f["filterType"]: f for f in entry.get("filters", [])}
    price, lot = filters["PRICE_FILTER"], filters["LOT_SIZE"]
    market = filters.get("MARKET_LOT_SIZE", lot)
    notional = filters.get("MIN_NOTIONAL", {})
    band = filters.get("PERCENT_PRICE", {})
    return MarketRules(
        symbol=f"{entry['baseAsset']}/{entry['quoteAsset']}:{entry.get('marginAsset', entry['quoteAsset'])}",
        venue_symbol=entry["symbol"],
        tick_size=float(price["tickSize"]),
        step_size=float(lot["stepSize"]),
        min_quantity=float(lot["minQty"]),
        max_quantity=float(lot["maxQty"]),
        market_step_size=float(market["stepSize"]),
        market_max_quantity=float(market["maxQty"]),
        min_notional=float(notional.get("notional", notional.get("minNotional", MIN_NOTIONAL_DEFAULT))),
        source=source,
        percent_up=float(band["multiplierUp"]) if "multiplierUp" in band else None,
        percent_down=float(band["multiplierDown"]) if "multiplierDown" in band else None,
    )


@cache
def bundled_rules() -> dict[str, MarketRules]:
    """Filters of Aster's USDT perpetuals for the bundled sample's assets (a snapshot in exchangeInfo form), for
    paper trading when the venue cannot be asked."""
    text = resources.files("mcp_trader.trading").joinpath("venue_rules.json").read_text()
    entries = json.loads(text)["symbols"]
    rules = [from_exchange_info(e, source="bundled defaults") for e in entries]
    return {r.symbol: r for r in rules}


def _floor(value: float, step: float) -> float:
    if step <= 0:
        return value
    d, s = Decimal(repr(value)), Decimal(repr(step))
    return float((d // s) * s)


def _on_grid(value: float, step: float) -> bool:
    if step <= 0:
        return True
    ratio = Decimal(repr(value)) / Decimal(repr(step))
    return ratio == ratio.to_integral_value() or math.isclose(float(ratio), round(float(ratio)), abs_tol=1e-9)


def _text(value: float) -> str:
    return format(Decimal(repr(value)).normalize(), "f")
