"""Data sources behind one interface, and the registry that builds them by name."""

from mcp_trader.config import Settings
from mcp_trader.data.sources.base import Source

SOURCE_NAMES = ("aster", "binance", "coingecko", "sample", "synthetic")
NETWORK_SOURCES = frozenset({"aster", "binance", "coingecko"})


def build_source(name: str, settings: Settings) -> Source:
    # Imported here so that naming a source never imports ccxt or httpx for the others.
    if name == "aster":
        from mcp_trader.data.sources.exchange import AsterSource

        return AsterSource(settings)
    if name == "binance":
        from mcp_trader.data.sources.exchange import BinanceSource

        return BinanceSource(settings)
    if name == "coingecko":
        from mcp_trader.data.sources.coingecko import CoinGeckoSource

        return CoinGeckoSource(settings)
    if name == "sample":
        from mcp_trader.data.sources.sample import SampleSource

        return SampleSource()
    if name == "synthetic":
        from mcp_trader.data.sources.synthetic import SyntheticSource

        return SyntheticSource(settings.synthetic_seed)
    raise ValueError(f"unknown source {name!r}")
