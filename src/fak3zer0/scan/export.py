"""Export the results table: text table, CSV, JSON or Parquet (with pyarrow), streamed row by row."""
from __future__ import annotations

import csv
import json
import sys
from datetime import datetime, timezone
from typing import IO, Any, Iterable, Iterator

from fak3zer0.errors import Fak3Zer0Error

FORMATS = ("table", "csv", "json", "parquet")
COLUMNS = ("path", "verdict", "fake_probability", "faces", "frames_used", "duration_s", "size_bytes",
           "content_hash", "model", "model_version", "seconds", "error", "created_at", "updated_at")
PARQUET_CHUNK = 5000


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def flat(row: dict[str, Any]) -> dict[str, Any]:
    d = {k: row.get(k) for k in COLUMNS}
    d["created_at"], d["updated_at"] = iso(row.get("created_at")), iso(row.get("updated_at"))
    return d


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return str(n)


def write_table(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    from fak3zer0.cli._common import format_table

    lines = []
    for r in rows:
        p = "-" if r["fake_probability"] is None else f"{r['fake_probability']:.3f}"
        dur = "-" if r["duration_s"] is None else f"{r['duration_s']:.1f}s"
        note = (r["error"] or "")[:60]
        lines.append([r["path"], r["verdict"].upper() if r["verdict"] == "fake" else r["verdict"], p,
                      str(r["faces"] if r["faces"] is not None else "-"), dur, _size(r["size_bytes"]),
                      r["model_version"], note])
    out.write(format_table(["file", "verdict", "fake_p", "faces", "duration", "size", "version", "error"],
                           lines, "llrrrrll") + "\n")
    return len(lines)


def write_csv(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    w = csv.DictWriter(out, fieldnames=list(COLUMNS))
    w.writeheader()
    n = 0
    for r in rows:
        w.writerow(flat(r))
        n += 1
    return n


def write_json(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """A JSON list; each object: the flat columns plus ``result`` (the ``detect --json`` object)."""
    out.write("[")
    n = 0
    for r in rows:
        d = flat(r)
        d["result"] = json.loads(r["result_json"]) if r.get("result_json") else None
        out.write(("\n  " if n == 0 else ",\n  ") + json.dumps(d))
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise Fak3Zer0Error("--format parquet needs pyarrow, which is not installed: pip install pyarrow "
                            "(or use --format csv / json)") from None
    return pa, pq


def write_parquet(rows: Iterable[dict[str, Any]], path: str) -> int:
    pa, pq = _pyarrow()
    schema = pa.schema([
        ("path", pa.string()), ("verdict", pa.string()), ("fake_probability", pa.float64()), ("faces", pa.int32()),
        ("frames_used", pa.int32()), ("duration_s", pa.float64()), ("size_bytes", pa.int64()),
        ("content_hash", pa.string()), ("model", pa.string()), ("model_version", pa.string()),
        ("seconds", pa.float64()), ("error", pa.string()),
        ("created_at", pa.timestamp("ms", tz="UTC")), ("updated_at", pa.timestamp("ms", tz="UTC")),
        ("result_json", pa.string()),
    ])
    n = 0
    with pq.ParquetWriter(path, schema) as writer:
        for chunk in _chunks(rows, PARQUET_CHUNK):
            cols = {name: [r.get(name) for r in chunk] for name in schema.names}
            for ts in ("created_at", "updated_at"):
                cols[ts] = [None if v is None else int(v * 1000) for v in cols[ts]]
            writer.write_table(pa.table(cols, schema=schema))
            n += len(chunk)
        if n == 0:
            writer.write_table(schema.empty_table())
    return n


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for r in rows:
        chunk.append(r)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def export(store, fmt: str, out: str | None = None, *, fake_only: bool = False, model: str | None = None,
           limit: int | None = None) -> int:
    """Write the results of ``store`` as ``fmt`` to ``out`` (a path; stdout when None). Returns the row count."""
    if fmt not in FORMATS:
        raise Fak3Zer0Error(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        _pyarrow()  # a clear message before any work
        if not out or out == "-":
            raise Fak3Zer0Error("--format parquet writes a file: give --out results.parquet")
    rows = store.iter_results(fake_only=fake_only, model=model, limit=limit)
    if fmt == "parquet":
        return write_parquet(rows, out)
    writer = {"table": write_table, "csv": write_csv, "json": write_json}[fmt]
    if not out or out == "-":
        return writer(rows, sys.stdout)
    with open(out, "w", encoding="utf-8", newline="" if fmt == "csv" else None) as f:
        return writer(rows, f)
