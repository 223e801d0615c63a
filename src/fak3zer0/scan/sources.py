"""Expand ``fak3zer0 scan`` SOURCE arguments into the list of files to scan.

A SOURCE is a folder (searched recursively for media files), a glob, a media file, or a text
file listing paths, one per line (``@list.txt``, or any existing ``*.txt`` file). Lines in a list
may themselves be folders or globs; blank lines and lines starting with ``#`` are ignored;
relative entries are taken relative to the folder of the list file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fak3zer0.errors import Fak3Zer0Error
from fak3zer0.media.discover import discover_inputs


@dataclass(frozen=True)
class SourceFile:
    """One file to scan (absolute path) or a problem found while listing the sources."""

    path: str
    error: str | None = None
    #: True when the path names a file that exists (its failure is a result row); False for a
    #: source that names nothing (a missing path, a glob matching nothing): only reported.
    exists: bool = True


def _read_list(list_file: Path) -> list[str]:
    try:
        text = list_file.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise Fak3Zer0Error(f"cannot read the list file {list_file}: {exc.strerror or exc}") from None
    base = list_file.parent
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        p = Path(line).expanduser()
        out.append(str(p if p.is_absolute() else base / p))
    return out


def _is_list_file(src: str) -> bool:
    return src.lower().endswith(".txt") and Path(src).is_file()


def expand_sources(sources: list[str] | tuple[str, ...]) -> list[SourceFile]:
    """Every file named by ``sources``, once each (by absolute path), in a stable order."""
    raw: list[str] = []
    for src in sources:
        if src.startswith("@"):
            raw.extend(_read_list(Path(src[1:]).expanduser()))
        elif _is_list_file(src):
            raw.extend(_read_list(Path(src)))
        else:
            raw.append(src)
    seen: set[str] = set()
    out: list[SourceFile] = []
    for item in discover_inputs(raw):
        path = os.path.abspath(os.path.expanduser(item.path))
        if path in seen:
            continue
        seen.add(path)
        exists = os.path.isfile(path) or (os.path.islink(path) and not os.path.isdir(path))
        if item.error and not exists:
            out.append(SourceFile(item.path, item.error, exists=False))
        else:
            out.append(SourceFile(path, item.error, exists=True))
    return out
