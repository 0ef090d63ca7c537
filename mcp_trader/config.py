"""Settings from the environment, in one place (variables prefixed MCP_TRADER_)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SOURCES = ("aster", "binance", "coingecko", "sample", "synthetic")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MCP_TRADER_", frozen=True)

    home: Path = Field(Path("~/.mcp-trader"), description="Where all state lives.")
    offline: bool = Field(False, description="Skip network sources entirely.")
    sources: tuple[str, ...] = Field(DEFAULT_SOURCES, description="Default fallback order.")
    request_timeout_s: float = Field(10.0, gt=0, description="Timeout of one network request.")
    retries: int = Field(3, ge=1, le=10, description="Attempts per request on transient errors.")
    backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles each attempt.")
    aster_url: str = "https://fapi.asterdex.com"
    aster_spot_url: str = "https://sapi.asterdex.com"
    binance_url: str = "https://api.binance.com"
    binance_futures_url: str = "https://fapi.binance.com"
    coingecko_url: str = "https://api.coingecko.com/api/v3"
    coingecko_api_key: str | None = Field(None, repr=False)
    synthetic_seed: int = 7
    http_token: str | None = Field(None, repr=False, description="Bearer token for HTTP transport.")
    log_level: str = "INFO"

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser()

    @property
    def candles_dir(self) -> Path:
        return self.home_dir / "candles"

    @property
    def features_dir(self) -> Path:
        return self.home_dir / "features"

    @property
    def models_dir(self) -> Path:
        return self.home_dir / "models"

    @property
    def backtests_dir(self) -> Path:
        return self.home_dir / "backtests"

    @property
    def exports_dir(self) -> Path:
        return self.home_dir / "exports"

    @property
    def studies_path(self) -> Path:
        """The default Optuna storage: one SQLite file for every study of this home."""
        return self.home_dir / "studies.sqlite"

    @property
    def db_path(self) -> Path:
        return self.home_dir / "state.sqlite"
