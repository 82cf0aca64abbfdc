"""SQLite cache of judge replies, keyed by (judge id, endpoint, template version, exact prompt).

Each reply is committed as soon as it arrives, so a killed run loses nothing already judged and a
re-run asks only for the rest. The raw reply is stored (parsing happens on read, so a parser fix
applies to cached replies). Credentials are never stored: the endpoint is recorded without them.
Safe across threads (one lock) and processes (SQLite WAL + busy timeout).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    judge_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    template_version TEXT NOT NULL,
    prompt TEXT NOT NULL,
    raw TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(judge_id: str, endpoint: str, template_version: str, prompt: str) -> str:
    blob = json.dumps([judge_id, endpoint, template_version, prompt], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ReplyCache:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(_SCHEMA)
            self._conn.commit()

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT raw FROM replies WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def put(self, key: str, judge_id: str, endpoint: str, template_version: str, prompt: str,
            raw: str) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, judge_id, endpoint, template_version, prompt, raw, time.time()),
            )
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
