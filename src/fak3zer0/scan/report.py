"""A self-contained HTML report of a results database: one file, no external assets.

Summary counts, a histogram of fake probabilities (inline SVG), the most suspicious files with
their face thumbnails (base64 JPEGs stored by the scanner) and the errors.
"""
from __future__ import annotations

import base64
import html
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from fak3zer0 import __version__
from fak3zer0.scan.export import _size, iso
from fak3zer0.store import ResultStore, results

BINS = 20
MAX_ERRORS = 200

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1200px;
     padding:0 16px;color:#1d232a;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde3ea;padding-bottom:4px}
.meta{color:#5b6773;font-size:12.5px;margin:0 0 16px;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:10px 14px;min-width:104px}
.card b{display:block;font-size:22px} .card span{color:#5b6773;font-size:12px}
.card.fake b{color:#c0392b} .card.real b{color:#1e8449} .card.error b{color:#8e6c00}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde3ea}
th,td{padding:5px 8px;border-bottom:1px solid #eef1f4;text-align:left;vertical-align:middle}
th{background:#f2f5f8;font-weight:600;font-size:12.5px} td.num{text-align:right;font-variant-numeric:tabular-nums}
td.path{word-break:break-all;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
img.thumb{width:72px;height:72px;border-radius:4px;display:block;background:#eee}
.nothumb{width:72px;height:72px;border-radius:4px;background:#eef1f4;color:#8a96a3;font-size:11px;
         display:flex;align-items:center;justify-content:center}
.v-fake{color:#c0392b;font-weight:600} .v-real{color:#1e8449} .v-error{color:#8e6c00} .v-no_face{color:#5b6773}
.bar{display:inline-block;height:8px;background:#c0392b;border-radius:2px;vertical-align:middle;margin-right:6px}
svg text{font:11px system-ui,sans-serif;fill:#5b6773}
footer{margin:32px 0 8px;color:#8a96a3;font-size:12px}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def histogram_svg(counts: list[int], width: int = 720, height: int = 220) -> str:
    """Inline SVG bar chart of ``counts`` over [0, 1]."""
    left, right, top, bottom = 44, 12, 12, 30
    w, h = width - left - right, height - top - bottom
    peak = max(counts) if counts and max(counts) > 0 else 1
    n = len(counts)
    bw = w / n
    parts = [f'<svg width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="histogram of fake probabilities">']
    for frac in (0.0, 0.5, 1.0):
        y = top + h - frac * h
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef1f4"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{round(frac * peak)}</text>')
    for i, c in enumerate(counts):
        lo, hi = i / n, (i + 1) / n
        bh = c / peak * h
        colour = "#c0392b" if lo >= 0.5 else "#1e8449"
        parts.append(f'<rect x="{left + i * bw + 1:.1f}" y="{top + h - bh:.1f}" width="{max(bw - 2, 1):.1f}" '
                     f'height="{bh:.1f}" fill="{colour}" opacity="0.85"><title>{lo:.2f}-{hi:.2f}: {c} file(s)'
                     f'</title></rect>')
    for k in range(0, 5):
        x = left + k / 4 * w
        parts.append(f'<text x="{x:.1f}" y="{top + h + 16}" text-anchor="middle">{k / 4:.2f}</text>')
    parts.append(f'<line x1="{left + w / 2:.1f}" x2="{left + w / 2:.1f}" y1="{top}" y2="{top + h}" '
                 f'stroke="#5b6773" stroke-dasharray="3 3"/>')
    parts.append(f'<text x="{left + w / 2:.1f}" y="{height - 2}" text-anchor="middle">fake probability '
                 f'(dashed: 0.5)</text></svg>')
    return "".join(parts)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def _stats(store: ResultStore, model: str | None) -> dict[str, Any]:
    where = [results.c.model == model] if model else []
    with store.engine.connect() as c:
        by_verdict = dict(c.execute(select(results.c.verdict, func.count()).where(*where)
                                    .group_by(results.c.verdict)).all())
        total_size, total_dur, first, last = c.execute(
            select(func.sum(results.c.size_bytes), func.sum(results.c.duration_s), func.min(results.c.created_at),
                   func.max(results.c.updated_at)).where(*where)).one()
        models = c.execute(select(results.c.model, results.c.model_version, func.count()).where(*where)
                           .group_by(results.c.model, results.c.model_version)).all()
        counts = [0] * BINS
        q = select(results.c.fake_probability).where(results.c.fake_probability.is_not(None), *where)
        for (p,) in c.execution_options(yield_per=5000).execute(q):
            counts[min(BINS - 1, max(0, int(float(p) * BINS)))] += 1
        errors = c.execute(select(results.c.path, results.c.error).where(results.c.verdict == "error", *where)
                           .order_by(results.c.path).limit(MAX_ERRORS)).all()
    return dict(by_verdict=by_verdict, total_size=total_size, total_duration=total_dur, first=first, last=last,
                models=models, counts=counts, errors=errors)


def build_report(store: ResultStore, *, top: int = 50, model: str | None = None, db_label: str = "",
                 title: str = "Fak3Zer0 scan report") -> str:
    """The report as one HTML string."""
    st = _stats(store, model)
    bv = st["by_verdict"]
    total = sum(bv.values())
    rows = list(store.iter_results(model=model, limit=top)) if top > 0 else []
    rows = [r for r in rows if r["fake_probability"] is not None]
    thumbs = store.get_thumbnails((r["content_hash"], r["model"], r["model_version"]) for r in rows)

    out = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{_e(title)}</h1>",
           f'<p class="meta">database: {_e(db_label)} &middot; generated {_e(iso(time.time()))} &middot; '
           f'rows scanned {_e(iso(st["first"]))} to {_e(iso(st["last"]))}</p>']
    cards = [("files", total, ""), ("fake", bv.get("fake", 0), "fake"), ("real", bv.get("real", 0), "real"),
             ("no face", bv.get("no_face", 0), ""), ("errors", bv.get("error", 0), "error"),
             ("total size", _size(st["total_size"]), ""),
             ("video time", _hours(st["total_duration"] or 0.0), "")]
    out.append('<h2>Summary</h2><div class="cards">' + "".join(
        f'<div class="card {cls}"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for k, v, cls in cards) + "</div>")
    if st["models"]:
        out.append("<h2>Models</h2><table><tr><th>model</th><th>version</th><th>rows</th></tr>" + "".join(
            f'<tr><td class="path">{_e(m)}</td><td>{_e(v)}</td><td class="num">{n}</td></tr>'
            for m, v, n in st["models"]) + "</table>")
    scored = sum(st["counts"])
    out.append(f"<h2>Fake probability</h2><p class=\"meta\">{scored} file(s) with a score "
               f"(no face and errors have none)</p>{histogram_svg(st['counts'])}")
    out.append(f"<h2>Most suspicious files</h2><p class=\"meta\">the {len(rows)} highest fake probabilities; "
               "thumbnail: the face crop the model found most suspicious</p>")
    if rows:
        out.append("<table><tr><th>#</th><th>face</th><th>file</th><th>verdict</th><th>fake p</th><th>faces</th>"
                   "<th>duration</th><th>size</th><th>version</th></tr>")
        for i, r in enumerate(rows, 1):
            jpeg = thumbs.get((r["content_hash"], r["model"], r["model_version"]))
            img = (f'<img class="thumb" alt="face" src="data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}">'
                   if jpeg else '<div class="nothumb">no image</div>')
            p = float(r["fake_probability"])
            dur = "-" if r["duration_s"] is None else f'{r["duration_s"]:.1f} s'
            out.append(f'<tr><td class="num">{i}</td><td>{img}</td><td class="path">{_e(r["path"])}'
                       f'<br><span class="meta">sha256 {_e(r["content_hash"][:16])}</span></td>'
                       f'<td class="v-{_e(r["verdict"])}">{_e(r["verdict"])}</td>'
                       f'<td class="num"><span class="bar" style="width:{p * 60:.0f}px"></span>{p:.3f}</td>'
                       f'<td class="num">{_e(r["faces"])}</td><td class="num">{_e(dur)}</td>'
                       f'<td class="num">{_e(_size(r["size_bytes"]))}</td><td>{_e(r["model_version"])}</td></tr>')
        out.append("</table>")
    else:
        out.append("<p>No file has a score yet.</p>")
    if st["errors"]:
        more = " (first %d)" % MAX_ERRORS if bv.get("error", 0) > MAX_ERRORS else ""
        out.append(f"<h2>Errors{more}</h2><table><tr><th>file</th><th>error</th></tr>" + "".join(
            f'<tr><td class="path">{_e(p)}</td><td>{_e(e)}</td></tr>' for p, e in st["errors"]) + "</table>")
    out.append(f"<footer>Fak3Zer0 {__version__}: automated estimates, not proof. A high fake probability "
               "means a person should look at the file.</footer></body></html>")
    return "\n".join(out)


def write_report(store: ResultStore, out: str | Path, **kwargs: Any) -> Path:
    """Write the report atomically (a temporary file renamed into place)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(build_report(store, **kwargs), encoding="utf-8")
    tmp.replace(out)
    return out
