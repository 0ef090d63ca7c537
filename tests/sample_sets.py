"""Feature sets from the bundled sample, built through the real builder in a throwaway offline home."""

import asyncio
from datetime import datetime
from pathlib import Path

from mcp_trader.config import Settings
from mcp_trader.features.dataset import FeatureRequest, FeatureSet, build_feature_set
from mcp_trader.home import Home


def offline_feature_set(home_dir: Path, symbols: list[str], start: datetime, as_of: datetime) -> FeatureSet:
    async def build() -> FeatureSet:
        home = Home(Settings(home=home_dir, offline=True))
        try:
            return await build_feature_set(home, FeatureRequest(symbols=symbols, start=start, as_of=as_of))
        finally:
            await home.close()

    return asyncio.run(build())
