"""Symbols in ccxt's unified form: spot `BTC/USDT`, linear perpetual `BTC/USDT:USDT`."""

import re

from pydantic import BaseModel

from mcp_trader.data.models import MarketType
from mcp_trader.errors import InputError

QUOTES = ("USDT", "USDC", "USD", "FDUSD", "BUSD", "BTC", "ETH")
_PATTERN = re.compile(r"^([A-Z0-9]{1,20})/([A-Z0-9]{2,10})(?::([A-Z0-9]{2,10}))?$")


class Symbol(BaseModel, frozen=True):
    base: str
    quote: str
    market: MarketType

    @property
    def unified(self) -> str:
        return f"{self.base}/{self.quote}:{self.quote}" if self.market == "perp" else f"{self.base}/{self.quote}"

    @property
    def spot(self) -> str:
        return f"{self.base}/{self.quote}"

    @property
    def slug(self) -> str:
        """File- and URI-safe form: BTC-USDT, or BTC-USDT-PERP."""
        return f"{self.base}-{self.quote}" + ("-PERP" if self.market == "perp" else "")

    def __str__(self) -> str:
        return self.unified


def parse_symbol(text: str, market: MarketType, field: str = "symbols") -> Symbol:
    """Parse `BTC/USDT`, `btc/usdt` or `BTC/USDT:USDT`; a settle suffix means a perpetual."""
    match = _PATTERN.match(text.strip().upper())
    if not match:
        raise InputError(field, f"{text!r} is not a symbol", "BASE/QUOTE such as BTC/USDT, or BTC/USDT:USDT")
    base, quote, settle = match.groups()
    if quote not in QUOTES:
        raise InputError(field, f"{text!r} has unknown quote currency {quote!r}", ", ".join(QUOTES))
    if settle is not None:
        if settle != quote:
            raise InputError(field, f"{text!r}: only linear perpetuals are supported", f"{base}/{quote}:{quote}")
        market = "perp"
    return Symbol(base=base, quote=quote, market=market)
