"""Turn command-line paths (files, folders, globs) into a list of inputs, each with its own error."""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from fak3zer0.defaults import MEDIA_EXTENSIONS


@dataclass(frozen=True)
class InputItem:
    """One input to analyse; ``error`` is set when it can't even be opened."""

    path: str
    error: str | None = None


def _walk_media(folder: Path) -> list[str]:
    found: list[str] = []
    seen_dirs: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        try:
            st = os.stat(root)
        except OSError:
            dirs[:] = []
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:  # symlinked folder cycle
            dirs[:] = []
            continue
        seen_dirs.add(key)
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(MEDIA_EXTENSIONS):
                found.append(os.path.join(root, name))
    return found


def _check_file(p: Path) -> str | None:
    try:
        st = p.stat()
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            return "symbolic link loop; the path never reaches a file"
        return f"cannot read file ({exc.strerror})"
    if st.st_size == 0:
        return "file is empty (0 bytes)"
    if not os.access(p, os.R_OK):
        return "permission denied"
    return None


def discover_inputs(paths: list[str] | tuple[str, ...]) -> list[InputItem]:
    """Expand folders (recursively, media extensions only) and globs; keep explicit files as given."""
    items: list[InputItem] = []
    for raw in paths:
        p = Path(raw)
        if p.is_symlink() and not p.exists():
            items.append(InputItem(raw, _check_file(p) or "broken symbolic link"))
        elif p.is_dir():
            media = _walk_media(p)
            if not media:
                kind = "a folder" + (" (named like a video)" if p.suffix.lower() in MEDIA_EXTENSIONS else "")
                items.append(InputItem(raw, f"is {kind} with no image or video files in it"))
            items.extend(InputItem(m, _check_file(Path(m))) for m in media)
        elif p.exists() or p.is_symlink():
            items.append(InputItem(raw, _check_file(p)))
        elif any(ch in raw for ch in "*?["):
            matches = sorted(glob.glob(raw, recursive=True))
            if not matches:
                items.append(InputItem(raw, "no file matches this pattern"))
            items.extend(discover_inputs(matches))
        else:
            items.append(InputItem(raw, "no such file or folder"))
    return items
