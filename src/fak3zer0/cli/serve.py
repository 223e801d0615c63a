"""``fak3zer0 serve``: the web app and REST API."""
from __future__ import annotations

import argparse
import ipaddress
import os
import sys

from fak3zer0 import defaults

DESCRIPTION = """Run the web app (http://HOST:PORT/) and the REST API (/api/v1, schema at /openapi.json).

Uploads are analysed in the background by --workers worker processes; results, uploads (named by
their sha256) and heat maps are kept in --data-dir and the SQLite store, so a restart loses
nothing (unfinished analyses are re-queued). Only 127.0.0.1 is listened on unless --host says
otherwise; set a token (FAK3ZER0_TOKEN or --token) before exposing the server to a network."""

EPILOG = """examples:
  fak3zer0 serve --model runs/best.pt                  http://127.0.0.1:8000/
  FAK3ZER0_TOKEN=s3cret fak3zer0 serve --host 0.0.0.0  every /api call needs the token
  fak3zer0 serve --model a.pt --model b.pt             clients may choose a or b (a is the default)"""


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("serve", help="run the web app and REST API", description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    net = p.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    net.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    net.add_argument("--token", default=None, metavar="TOKEN",
                     help="require this API token on every /api call (default: $FAK3ZER0_TOKEN; prefer the "
                          "variable, a command line is visible to other users)")
    net.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                     help="allow cross-origin calls from ORIGIN, e.g. https://example.org (repeatable; default: none)")
    m = p.add_argument_group("model")
    m.add_argument("--model", action="append", default=None, metavar="NAME_OR_CHECKPOINT",
                   help=f"model offered to clients: checkpoint file, shipped name or ARCH:WEIGHTS; repeat to offer "
                        f"several, the first is the default (default: {defaults.DEFAULT_MODEL})")
    m.add_argument("--frames", type=int, default=defaults.DEFAULT_FRAMES, metavar="N",
                   help=f"frames sampled per video unless the client asks otherwise (default: {defaults.DEFAULT_FRAMES})")
    m.add_argument("--threshold", type=float, default=None, metavar="P",
                   help="fake probability at or above which a file is called fake (default: the model's)")
    m.add_argument("--device", default=defaults.DEFAULT_DEVICE, choices=["auto", "cpu", "cuda"],
                   help="where the model runs (default: auto)")
    m.add_argument("--face-detector", default=defaults.DEFAULT_FACE_DETECTOR, choices=["mtcnn", "haar"],
                   help="face detector (default: mtcnn)")
    w = p.add_argument_group("storage and limits")
    w.add_argument("--data-dir", default=None, metavar="DIR",
                   help="uploads, heat maps and the database (default: ~/.local/share/fak3zer0/server)")
    w.add_argument("--db", default=None, metavar="FILE_OR_URL",
                   help="results store: SQLite file or SQLAlchemy URL (default: DATA_DIR/fak3zer0.sqlite)")
    w.add_argument("--workers", type=int, default=1, metavar="N", help="analysis worker processes (default: 1)")
    w.add_argument("--threads", type=int, default=0, metavar="N",
                   help="torch threads per worker (default: 0 = CPU cores / workers)")
    w.add_argument("--max-upload-mb", type=float, default=200.0, metavar="MB",
                   help="largest accepted upload (default: 200)")
    w.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="time limit of one analysis; past it the analysis fails (default: 600)")
    w.add_argument("--queue-size", type=int, default=16, metavar="N",
                   help="analyses allowed to wait; more uploads get 503 + Retry-After (default: 16)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="server log level (default: info)")
    p.set_defaults(func=run)
    return p


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_settings(args):
    from fak3zer0.server.settings import Settings, default_data_dir

    return Settings(
        data_dir=args.data_dir or default_data_dir(), db=args.db, models=args.model or [defaults.DEFAULT_MODEL],
        frames=args.frames, threshold=args.threshold, device=args.device, face_detector=args.face_detector,
        workers=args.workers, threads=args.threads, max_upload_mb=args.max_upload_mb,
        token=args.token or os.environ.get("FAK3ZER0_TOKEN") or None, timeout_s=args.timeout,
        queue_size=args.queue_size, cors_origins=args.cors_origin,
    )


def run(args) -> int:
    import logging

    import uvicorn

    from fak3zer0.server import create_app

    settings = build_settings(args)
    app = create_app(settings)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not _is_loopback(args.host) and not settings.token:
        print(f"fak3zer0 serve: warning: listening on {args.host} without an API token; anyone who can reach "
              "this port can upload files and read results (set FAK3ZER0_TOKEN)", file=sys.stderr)
    print(f"fak3zer0 serve: http://{args.host}:{args.port}/  model: {app.state.catalog.default}  "
          f"data: {settings.data_dir}" + ("  (token required)" if settings.token else ""), file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, server_header=False,
                timeout_keep_alive=5)
    return 0
