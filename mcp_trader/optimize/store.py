"""The index of optimisation studies in SQLite: each study's name, storage URL and configuration (the trials
themselves live in Optuna's storage)."""

from typing import Any

from mcp_trader.errors import NotFoundError
from mcp_trader.store.db import Database, dumps
from mcp_trader.timefmt import now_iso


class StudyIndex:
    def __init__(self, db: Database):
        self.db = db

    async def remember(self, name: str, url: str, config: dict[str, Any]) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO studies (name, created_at, updated_at, storage, record) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET updated_at = excluded.updated_at, storage = excluded.storage",
                (name, now_iso(), now_iso(), url, dumps(config)),
            )

    async def studies(self) -> list[dict[str, Any]]:
        return await self.db.fetch_all("SELECT * FROM studies ORDER BY updated_at DESC")

    async def url(self, name: str) -> str:
        row = await self.db.fetch_one("SELECT storage FROM studies WHERE name = ?", name)
        if row is None:
            raise NotFoundError(f"no study {name!r}; optimize creates studies and trader://studies lists them")
        return row["storage"]
