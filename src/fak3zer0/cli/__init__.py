"""Command line: ``fak3zer0 <command> ...``.

Each command lives in its own module in this package and exposes
``register(subparsers) -> argparse.ArgumentParser`` whose parser sets ``func`` (a callable taking
the parsed args and returning an exit code). New commands are picked up automatically; heavy
imports belong inside ``func`` so ``fak3zer0 --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from fak3zer0 import __version__
from fak3zer0.errors import Fak3Zer0Error

#: Listing order in ``--help``; modules not named here follow alphabetically.
ORDER = ["detect", "models", "preprocess", "train", "evaluate", "calibrate", "threshold", "export", "scan", "results", "report",
         "serve"]

EPILOG = """examples:
  fak3zer0 detect clip.mp4 photo.jpg           verdict table for two files
  fak3zer0 detect videos/ --json > out.json   every video/image under a folder, as JSON
  fak3zer0 detect clip.mp4 --heatmap maps/     also write per-face heat maps
  fak3zer0 models                              registered architectures and shipped weights
Run `fak3zer0 COMMAND --help` for each command's options."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fak3zer0",
        description="Fak3Zer0: offline deepfake detection for videos and images.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fak3zer0 {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    for name in names:
        module = importlib.import_module(f"{__name__}.{name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except Fak3Zer0Error as exc:
        print(f"fak3zer0: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fak3zer0: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
