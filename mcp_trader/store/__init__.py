"""Where things live: candles (Parquet), state (SQLite), artifacts."""
