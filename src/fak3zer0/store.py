"""The results store shared by ``fak3zer0 scan`` and ``fak3zer0 serve``.

SQLAlchemy Core over an embedded SQLite file (WAL mode) by default; any SQLAlchemy URL
(``postgresql://...``) works too. Two tables:

* ``results``  - one row per (content hash, model, model version): what ``detect --json`` says
  about a file plus file facts. The scanner's idempotency key.
* ``analyses`` - one row per web/API upload: status, progress, options, result.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import (Column, Float, Integer, MetaData, String, Table, Text, create_engine, event, func, select,
                        update)
from sqlalchemy.engine import Engine

metadata = MetaData()

results = Table(
    "results", metadata,
    Column("content_hash", String(64), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("model_version", String(64), primary_key=True),
    Column("path", Text, nullable=False),
    Column("size_bytes", Integer),
    Column("duration_s", Float),
    Column("verdict", String(16), nullable=False, index=True),
    Column("fake_probability", Float, index=True),
    Column("faces", Integer),
    Column("frames_used", Integer),
    Column("seconds", Float),
    Column("error", Text),
    Column("result_json", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

analyses = Table(
    "analyses", metadata,
    Column("id", String(36), primary_key=True),
    Column("status", String(16), nullable=False, index=True),  # queued | running | done | failed
    Column("progress", Float, nullable=False, default=0.0),
    Column("filename", Text),            # the client's name, for display only (never used as a path)
    Column("content_hash", String(64), index=True),
    Column("size_bytes", Integer),
    Column("options_json", Text),
    Column("result_json", Text),
    Column("error", Text),
    Column("created_at", Float, nullable=False, index=True),
    Column("updated_at", Float, nullable=False),
)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(db: str | Path) -> Engine:
    """``db`` is a file path (SQLite) or an SQLAlchemy URL."""
    url = str(db)
    if "://" not in url:
        Path(url).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    metadata.create_all(engine)
    return engine


@dataclass
class ResultStore:
    engine: Engine

    @classmethod
    def open(cls, db: str | Path) -> "ResultStore":
        return cls(make_engine(db))

    # ---------------------------------------------------------------- results
    def get_result(self, content_hash: str, model: str, model_version: str) -> dict[str, Any] | None:
        q = select(results).where(results.c.content_hash == content_hash, results.c.model == model,
                                  results.c.model_version == model_version)
        with self.engine.connect() as c:
            row = c.execute(q).mappings().first()
        return dict(row) if row else None

    def put_result(self, *, content_hash: str, model: str, model_version: str, result: dict[str, Any],
                   size_bytes: int | None = None, duration_s: float | None = None) -> None:
        """Insert or replace the row for (hash, model, version) in one transaction."""
        now = time.time()
        row = dict(content_hash=content_hash, model=model, model_version=model_version, path=result["path"],
                   size_bytes=size_bytes, duration_s=duration_s, verdict=result["verdict"],
                   fake_probability=result.get("fake_probability"), faces=len(result.get("faces", [])),
                   frames_used=result.get("frames_used"), seconds=result.get("seconds"), error=result.get("error"),
                   result_json=json.dumps(result), updated_at=now)
        key = (results.c.content_hash == content_hash) & (results.c.model == model) & (results.c.model_version == model_version)
        with self.engine.begin() as c:
            if c.execute(select(results.c.created_at).where(key)).first():
                c.execute(update(results).where(key).values(**row))
            else:
                c.execute(results.insert().values(created_at=now, **row))

    def iter_results(self, *, fake_only: bool = False, model: str | None = None) -> Iterator[dict[str, Any]]:
        q = select(results).order_by(results.c.fake_probability.desc().nulls_last(), results.c.path)
        if fake_only:
            q = q.where(results.c.verdict == "fake")
        if model:
            q = q.where(results.c.model == model)
        with self.engine.connect() as c:
            for row in c.execute(q).mappings():
                yield dict(row)

    def count_results(self) -> dict[str, int]:
        q = select(results.c.verdict, func.count()).group_by(results.c.verdict)
        with self.engine.connect() as c:
            return {v: n for v, n in c.execute(q)}

    # ---------------------------------------------------------------- analyses
    def create_analysis(self, analysis_id: str, *, filename: str, content_hash: str, size_bytes: int,
                        options: dict[str, Any]) -> None:
        now = time.time()
        with self.engine.begin() as c:
            c.execute(analyses.insert().values(id=analysis_id, status="queued", progress=0.0, filename=filename,
                                               content_hash=content_hash, size_bytes=size_bytes,
                                               options_json=json.dumps(options), created_at=now, updated_at=now))

    def update_analysis(self, analysis_id: str, **values: Any) -> None:
        if "result" in values:
            values["result_json"] = json.dumps(values.pop("result"))
        values["updated_at"] = time.time()
        with self.engine.begin() as c:
            c.execute(update(analyses).where(analyses.c.id == analysis_id).values(**values))

    def get_analysis(self, analysis_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            row = c.execute(select(analyses).where(analyses.c.id == analysis_id)).mappings().first()
        return _decode_analysis(row) if row else None

    def list_analyses(self, *, offset: int = 0, limit: int = 20) -> tuple[list[dict[str, Any]], int]:
        with self.engine.connect() as c:
            total = c.execute(select(func.count()).select_from(analyses)).scalar_one()
            rows = c.execute(select(analyses).order_by(analyses.c.created_at.desc()).offset(offset).limit(limit)).mappings()
            return [_decode_analysis(r) for r in rows], int(total)

    def delete_analysis(self, analysis_id: str) -> bool:
        with self.engine.begin() as c:
            return c.execute(analyses.delete().where(analyses.c.id == analysis_id)).rowcount > 0


def _decode_analysis(row) -> dict[str, Any]:
    d = dict(row)
    d["options"] = json.loads(d.pop("options_json") or "{}")
    d["result"] = json.loads(d.pop("result_json")) if d.get("result_json") else None
    return d
