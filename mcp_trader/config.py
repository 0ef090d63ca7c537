"""Settings from the environment, in one place (variables prefixed MCP_TRADER_)."""

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from mcp_trader.policy.limits import RiskLimits

DEFAULT_SOURCES = ("aster", "binance", "coingecko", "sample", "synthetic")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MCP_TRADER_", env_nested_delimiter="__", frozen=True,
                                      populate_by_name=True)

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
    log_format: Literal["text", "json"] = Field("text", description="json: one JSON object per line on stderr.")
    inference_only: bool = Field(
        False, description="Serve only the inference tools (ONNX signals, paper trading, listings): no training stack."
    )

    # Trading. Limits live here only: no trading tool argument can raise them.
    paper_balance: float = Field(10_000.0, gt=0, description="Starting USDT balance of the paper account.")
    paper_slippage_bps: float = Field(2.0, ge=0, le=500, description="Paper market fills slip this much.")
    limits: RiskLimits = Field(RiskLimits(), description="Risk limits of every order, paper and live, and the "
                               "default of every backtest (MCP_TRADER_LIMITS__MAX_ORDER_NOTIONAL=2000, …).")
    trading_timeframe: str = Field("1h", description="Bars that prices, ATR and the paper loop use.")
    live_trading: bool = Field(False, description="Opt-in: without it every live order is refused.")
    confirm_ttl_s: float = Field(120.0, gt=0, le=3600, description="How long a live order's preview token lasts.")
    aster_chain_id: int = Field(1666, description="EIP-712 chain id: 1666 mainnet, 714 testnet.")
    # Aster V3 (EIP-712) credentials: the main wallet, the API wallet (agent) and the agent's private key.
    aster_user: str | None = Field(None, validation_alias=AliasChoices("ASTER_USER", "aster_user"))
    aster_signer: str | None = Field(None, validation_alias=AliasChoices("ASTER_SIGNER", "aster_signer"))
    aster_private_key: SecretStr | None = Field(
        None, repr=False, validation_alias=AliasChoices("ASTER_PRIVATE_KEY", "aster_private_key")
    )

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser()

    @property
    def candles_dir(self) -> Path:
        return self.home_dir / "candles"

    @property
    def funding_dir(self) -> Path:
        return self.home_dir / "funding"

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
    def trading_dir(self) -> Path:
        return self.home_dir / "trading"

    @property
    def db_path(self) -> Path:
        return self.home_dir / "state.sqlite"
