"""``fak3zer0 scan SOURCE... --db results.sqlite``: scan many files into a results database."""
from __future__ import annotations

import argparse
import json
import sys

from fak3zer0.cli._common import add_model_options, add_progress_option, format_table

DESCRIPTION = """Scan folders, globs or lists of files into a results database, resumably.

SOURCE is a folder (searched recursively), a glob, a media file, or a text file listing paths,
one per line (@list.txt, or any .txt file; relative lines are relative to the list's folder).

Every file is identified by the SHA-256 of its content: a file already in the database for
this model and model version is skipped (so are renamed or copied duplicates), a new model
version scans again, --rescan scans everything again. Interrupted (Ctrl-C, kill -9, power
cut), the same command finishes the rest: rows are committed in small batches, whole rows only.
Failures (unreadable, damaged) are rows too, with their error; no file stops the scan.

Decoding and face detection run in --workers processes (default: one per CPU core);
the model scores batches of files in this process (on the GPU when there is one). With
--engine ray the same pipeline runs on a Ray cluster (pip install 'fak3zer0[ray]').

Exit status: 0 when the scan finished, 1 when it finished but some files in this run are
errors, 2 on a usage or setup error, 130 when interrupted (run it again to resume)."""

EPILOG = """examples:
  fak3zer0 scan /archive --db results.sqlite
  fak3zer0 scan @todo.txt 'incoming/**/*.mp4' --db results.sqlite --workers 6
  fak3zer0 scan /mnt/shared/videos --db postgresql://u:p@db/scans --engine ray --ray-address auto
  fak3zer0 results results.sqlite --fake-only
  fak3zer0 report results.sqlite --out report.html"""


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("scan", help="scan folders/lists of media into a results database (resumable)",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="folders, globs, media files, or @list.txt files")
    p.add_argument("--db", required=True, metavar="DB",
                   help="results database: a SQLite file (created if missing) or an SQLAlchemy URL")
    g = p.add_argument_group("scanning")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="decode/face worker processes (default: one per CPU core; 0 = all in this process)")
    g.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local processes (default) or a Ray cluster")
    g.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="Ray cluster to join (e.g. auto, or HOST:6379); default: start a local Ray runtime")
    g.add_argument("--rescan", action="store_true", help="scan every file again, even if it has a row")
    g.add_argument("--retry-errors", action="store_true", help="scan again the files whose row is an error")
    g.add_argument("--batch-size", type=int, default=16, metavar="N", help="files per inference batch (default: 16)")
    g.add_argument("--file-timeout", type=float, default=600.0, metavar="S",
                   help="give up on a file after S seconds of decoding (local engine; 0 = never; default: 600)")
    add_model_options(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    add_progress_option(p)
    p.set_defaults(func=run)
    return p


def summary_table(s) -> str:
    rows = [["scanned", str(s.scanned)], ["skipped (already in db)", str(s.skipped)], ["fake", str(s.fake)],
            ["real", str(s.real)], ["no face", str(s.no_face)], ["errors", str(s.errors)]]
    if s.missing:
        rows.append(["missing sources", str(s.missing)])
    rate = f", {s.scanned / s.seconds:.2f} files/s" if s.seconds > 0 and s.scanned else ""
    rows.append(["time", f"{s.seconds:.1f} s"])
    head = "scan interrupted: run the same command again to finish" if s.interrupted else "scan finished"
    return (f"{head}\n" + format_table(["", "files"], rows, "lr") +
            f"\n\n{s.total} file(s) in the sources{rate}\ndatabase: {s.db}\n"
            f"model: {s.model} (version {s.model_version}); engine: {s.engine}, workers: {s.workers}")


def run(args) -> int:
    from fak3zer0.cli._common import progress_enabled
    from fak3zer0.scan import ScanOptions, scan

    opts = ScanOptions(model=args.model, frames=args.frames, threshold=args.threshold, device=args.device,
                       face_detector=args.face_detector, threads=getattr(args, "threads", None),
                       detect_every=args.detect_every, full_detect_every=args.full_detect_every, backend=args.backend,
                       workers=args.workers, engine=args.engine,
                       ray_address=args.ray_address, rescan=args.rescan, retry_errors=args.retry_errors,
                       batch_size=args.batch_size, file_timeout_s=args.file_timeout,
                       progress=progress_enabled(args.progress))
    summary = scan(args.sources, args.db, opts)
    if args.json:
        json.dump(summary.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(summary_table(summary))
    if summary.interrupted:
        print("fak3zer0: interrupted; committed rows are kept", file=sys.stderr)
        return 130
    return 1 if summary.errors else 0
