"""The results store shared by ``fak3zer0 scan`` and ``fak3zer0 serve``.

SQLAlchemy Core over an embedded SQLite file (WAL mode) by default; any SQLAlchemy URL
(``postgresql://...``) works too. Two tables:

* ``results``  - one row per (content hash, model, model version): what ``detect --json`` says
  about a file plus file facts. The scanner's idempotency key.
* ``analyses`` - one row per web/API upload: status, progress, options, result.

and two tables the batch scanner keeps beside ``results``:

* ``scan_files`` - path -> (size, mtime, content hash), so a resumed scan need not re-read
  unchanged files to hash them again.
* ``thumbnails`` - a small JPEG of the most suspicious face crop per result row, for reports.

Writes of results are upserts keyed by (content hash, model, model version): a row is never
duplicated, whatever order or how many times a file is written.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from sqlalchemy import (BigInteger, Column, Float, Integer, LargeBinary, MetaData, String, Table, Text, create_engine,
                        event, func, select, tuple_, update)
from sqlalchemy.engine import Connection, Engine

metadata = MetaData()

results = Table(
    "results", metadata,
    Column("content_hash", String(64), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("model_version", String(64), primary_key=True),
    Column("path", Text, nullable=False),
    Column("size_bytes", BigInteger),  # INTEGER in SQLite either way; BIGINT elsewhere (files over 2 GiB)
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

scan_files = Table(
    "scan_files", metadata,
    Column("path", Text, primary_key=True),  # absolute path as scanned
    Column("size_bytes", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("content_hash", String(64), nullable=False, index=True),
    Column("updated_at", Float, nullable=False),
)

thumbnails = Table(
    "thumbnails", metadata,
    Column("content_hash", String(64), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("model_version", String(64), primary_key=True),
    Column("jpeg", LargeBinary, nullable=False),
)

_results_table, _thumbnails_table = results, thumbnails  # names the methods' keyword arguments shadow
_RESULT_KEY = ("content_hash", "model", "model_version")
_IN_CHUNK = 400  # bound on bound parameters per IN (...) query


def _upsert(c: Connection, table: Table, rows: list[dict[str, Any]], key: tuple[str, ...],
            keep: tuple[str, ...] = ()) -> None:
    """Insert rows, or update the existing row with the same primary key (columns in ``keep`` untouched)."""
    if not rows:
        return
    dialect = c.dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        stmt = insert(table)
        cols = [k for k in rows[0] if k not in key and k not in keep]
        stmt = stmt.on_conflict_do_update(index_elements=list(key), set_={k: stmt.excluded[k] for k in cols})
        c.execute(stmt, rows)
        return
    for row in rows:  # any other database: select, then update or insert (inside the caller's transaction)
        where = [table.c[k] == row[k] for k in key]
        if c.execute(select(table.c[key[0]]).where(*where)).first():
            c.execute(update(table).where(*where).values(**{k: v for k, v in row.items() if k not in keep}))
        else:
            c.execute(table.insert().values(**row))


def result_row(*, content_hash: str, model: str, model_version: str, result: dict[str, Any],
               size_bytes: int | None = None, duration_s: float | None = None, now: float | None = None) -> dict[str, Any]:
    """The ``results`` row for one ``detect --json`` object plus file facts."""
    now = time.time() if now is None else now
    return dict(content_hash=content_hash, model=model, model_version=model_version, path=result["path"],
                size_bytes=size_bytes, duration_s=duration_s, verdict=result["verdict"],
                fake_probability=result.get("fake_probability"), faces=len(result.get("faces", [])),
                frames_used=result.get("frames_used"), seconds=result.get("seconds"), error=result.get("error"),
                result_json=json.dumps(result), created_at=now, updated_at=now)


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
        row = result_row(content_hash=content_hash, model=model, model_version=model_version, result=result,
                         size_bytes=size_bytes, duration_s=duration_s)
        self.put_scan_batch(results=[row])

    def put_scan_batch(self, *, results: Iterable[dict[str, Any]] = (), thumbnails: Iterable[dict[str, Any]] = (),
                       files: Iterable[dict[str, Any]] = ()) -> None:
        """Upsert many rows in ONE transaction: all of them are committed, or none.

        ``results``: rows from :func:`result_row`; ``thumbnails``: dicts with content_hash, model,
        model_version, jpeg; ``files``: dicts with path, size_bytes, mtime_ns, content_hash.
        """
        res, thumbs = list(results), list(thumbnails)
        now = time.time()
        files_rows = [dict(f, updated_at=now) for f in files]
        if not (res or thumbs or files_rows):
            return
        with self.engine.begin() as c:
            _upsert(c, _results_table, res, _RESULT_KEY, keep=("created_at",))
            _upsert(c, _thumbnails_table, thumbs, _RESULT_KEY)
            _upsert(c, scan_files, files_rows, ("path",))

    def existing_hashes(self, hashes: Iterable[str], model: str, model_version: str, *,
                        include_errors: bool = True) -> set[str]:
        """Which of ``hashes`` already have a row for (model, model_version)."""
        hashes = list(dict.fromkeys(hashes))
        found: set[str] = set()
        with self.engine.connect() as c:
            for i in range(0, len(hashes), _IN_CHUNK):
                q = select(results.c.content_hash).where(results.c.model == model,
                                                         results.c.model_version == model_version,
                                                         results.c.content_hash.in_(hashes[i:i + _IN_CHUNK]))
                if not include_errors:
                    q = q.where(results.c.verdict != "error")
                found.update(r[0] for r in c.execute(q))
        return found

    def cached_file_hashes(self, paths: Iterable[str]) -> dict[str, tuple[int, int, str]]:
        """path -> (size_bytes, mtime_ns, content_hash) recorded by an earlier scan."""
        paths = list(dict.fromkeys(paths))
        out: dict[str, tuple[int, int, str]] = {}
        with self.engine.connect() as c:
            for i in range(0, len(paths), _IN_CHUNK):
                q = select(scan_files.c.path, scan_files.c.size_bytes, scan_files.c.mtime_ns,
                           scan_files.c.content_hash).where(scan_files.c.path.in_(paths[i:i + _IN_CHUNK]))
                out.update({p: (int(s), int(m), h) for p, s, m, h in c.execute(q)})
        return out

    def get_thumbnails(self, keys: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], bytes]:
        """(content_hash, model, model_version) -> JPEG bytes, for the keys that have one."""
        keys = list(dict.fromkeys(keys))
        out: dict[tuple[str, str, str], bytes] = {}
        t = _thumbnails_table
        with self.engine.connect() as c:
            for i in range(0, len(keys), _IN_CHUNK // 3):
                q = select(t.c.content_hash, t.c.model, t.c.model_version, t.c.jpeg).where(
                    tuple_(t.c.content_hash, t.c.model, t.c.model_version).in_(keys[i:i + _IN_CHUNK // 3]))
                out.update({(h, m, v): bytes(j) for h, m, v, j in c.execute(q)})
        return out

    def iter_results(self, *, fake_only: bool = False, model: str | None = None,
                     limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Rows, most suspicious first (no score last), streamed from the database."""
        q = select(results).order_by(results.c.fake_probability.desc().nulls_last(), results.c.path)
        if fake_only:
            q = q.where(results.c.verdict == "fake")
        if model:
            q = q.where(results.c.model == model)
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as c:
            for row in c.execution_options(yield_per=1000).execute(q).mappings():
                yield dict(row)

    def count_results(self, *, model: str | None = None) -> dict[str, int]:
        q = select(results.c.verdict, func.count()).group_by(results.c.verdict)
        if model:
            q = q.where(results.c.model == model)
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
