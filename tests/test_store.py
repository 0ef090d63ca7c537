"""The Parquet candle store and the SQLite database: atomic writes, range reads, migrations."""

import sqlite3

import pandas as pd
import pytest

from mcp_trader.data.sources.sample import load
from mcp_trader.data.store import CandleStore
from mcp_trader.store import db as db_module
from mcp_trader.store.db import Database
from mcp_trader.store.files import write_atomically


def test_write_then_read_a_range(tmp_path):
    store = CandleStore(tmp_path)
    path = store.path("sample", "spot", "BTC-USDT", "1h")
    frame = load("BTC")
    store.write(path, frame, {"source": "sample"})
    start, end = pd.Timestamp("2023-05-01", tz="UTC"), pd.Timestamp("2023-05-03", tz="UTC")
    part = store.read(path, start, end)
    assert len(part) == 48 and part.index[0] == start and part.index[-1] < end
    assert part.equals(frame.loc[start : end - pd.Timedelta(hours=1)])
    assert store.provenance(path) == {"source": "sample"}


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    store = CandleStore(tmp_path)
    path = store.path("sample", "spot", "BTC-USDT", "1h")
    frame = load("BTC").iloc[:100]
    store.write(path, frame, {"version": 1})

    def crash_half_way(tmp):
        tmp.write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, crash_half_way)
    assert store.provenance(path) == {"version": 1}
    assert [p.name for p in path.parent.iterdir()] == ["1h.parquet"]


@pytest.mark.anyio
async def test_migrations_run_once_and_record_the_version(tmp_path):
    path = tmp_path / "state.sqlite"
    db = await Database(path).open()
    assert await db.schema_version() == len(db_module.MIGRATIONS)
    await db.close()
    db = await Database(path).open()  # reopening an up-to-date home applies nothing
    assert await db.schema_version() == len(db_module.MIGRATIONS)
    await db.close()


@pytest.mark.anyio
async def test_an_older_home_is_upgraded_by_a_newer_release(tmp_path, monkeypatch):
    path = tmp_path / "state.sqlite"
    db = await Database(path).open()
    await db.conn.execute("INSERT INTO collections VALUES ('c1', 'now', '{}', '{}')")
    await db.close()
    monkeypatch.setattr(db_module, "MIGRATIONS", (*db_module.MIGRATIONS, "CREATE TABLE later (id TEXT PRIMARY KEY)"))
    db = await Database(path).open()
    assert await db.schema_version() == len(db_module.MIGRATIONS)
    assert await db.fetch_all("SELECT id FROM collections") == [{"id": "c1"}]
    assert await db.fetch_all("SELECT * FROM later") == []
    await db.close()


@pytest.mark.anyio
async def test_a_failing_migration_is_rolled_back_whole(tmp_path, monkeypatch):
    path = tmp_path / "state.sqlite"
    broken = (*db_module.MIGRATIONS, "CREATE TABLE half (id INTEGER); CREATE TABLE oops (")
    monkeypatch.setattr(db_module, "MIGRATIONS", broken)
    with pytest.raises(sqlite3.OperationalError):
        await Database(path).open()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(broken) - 1
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchall() == []


@pytest.mark.anyio
async def test_a_home_from_a_newer_release_is_refused(tmp_path):
    path = tmp_path / "state.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(RuntimeError, match="newer than this release"):
        await Database(path).open()
