"""Artifacts in one folder per id, published whole: written to a staging folder, then moved into place."""

import os
import shutil
from pathlib import Path

from mcp_trader.store.db import Database
from mcp_trader.store.files import write_atomically


class FolderStore:
    """A crash while writing leaves at most a hidden staging folder, never a half-written item."""

    def __init__(self, root: Path, db: Database):
        self.root = root
        self.db = db

    def folder(self, item_id: str) -> Path:
        return self.root / item_id

    def staging(self, item_id: str) -> Path:
        path = self.root / f".{item_id}.partial"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def place(self, staging: Path, item_id: str, record_name: str, record_json: str) -> None:
        """The record into the staging folder, then the folder into place (the caller indexes it after)."""
        write_atomically(staging / record_name, lambda tmp: Path(tmp).write_text(record_json))
        os.replace(staging, self.folder(item_id))
