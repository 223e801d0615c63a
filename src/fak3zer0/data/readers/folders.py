"""Plain folders: any tree with ``real/`` and ``fake/`` folders (at any depth) holding media files.

    ROOT/
      real/  a.jpg  clips/b.mp4 ...
      fake/  c.png ...
      more/nested/real/ ...     (every folder named real or fake counts, case-insensitive)

Label = the nearest ``real``/``fake`` folder above the file. Nothing tells which items belong
together, so by default each file is its own group (``group_by="file"``); ``group_by="folder"``
groups by the file's parent folder (frames exported per video, one folder per person, ...).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

from fak3zer0.data.readers._common import media_kind, root_dir
from fak3zer0.data.samples import Sample
from fak3zer0.data.splits import group_split
from fak3zer0.errors import DatasetError

_LABEL_DIRS = {"real": 0, "fake": 1}


def read_folders(root: str | os.PathLike, *, source: str | None = None, group_by: str = "file",
                 fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> list[Sample]:
    """Read every media file under a ``real/`` or ``fake/`` folder below ``root`` (see the module doc)."""
    if group_by not in ("file", "folder"):
        raise DatasetError(f"folders: group_by={group_by!r}: choose 'file' or 'folder'")
    base = root_dir(root, "folders")
    source = source if source is not None else base.name
    samples: list[Sample] = []
    n_label_dirs = 0
    for dirpath, dirs, files in os.walk(base, followlinks=False):
        dirs.sort()
        here = Path(dirpath)
        label = None
        rel_parts = here.relative_to(base).parts
        for part in reversed(rel_parts):  # nearest real/fake folder wins
            if part.lower() in _LABEL_DIRS:
                label = _LABEL_DIRS[part.lower()]
                break
        if rel_parts and rel_parts[-1].lower() in _LABEL_DIRS:
            n_label_dirs += 1
        if label is None:
            continue
        for name in sorted(files):
            kind = media_kind(name)
            if kind is None:
                continue
            path = here / name
            rel = path.relative_to(base).as_posix()
            if group_by == "file":
                group = "file:" + os.path.splitext(rel)[0]
            else:
                group = "folder:" + here.relative_to(base).as_posix()
            samples.append(Sample(path=str(path), label=label, video_id=os.path.splitext(rel)[0], group=group,
                                  split=group_split(group, fractions, seed), source=source,
                                  method="unknown" if label else "none", kind=kind, root=str(base)))
    if not n_label_dirs:
        raise DatasetError(f"not a real/fake folder tree: no folder named 'real/' or 'fake/' under {base}")
    if not samples:
        raise DatasetError(f"folders: the 'real/' and 'fake/' folders under {base} hold no image or video files")
    labels = {s.label for s in samples}
    if len(labels) == 1:
        warnings.warn(f"folders: only {'fake' if 1 in labels else 'real'} media found under {base}", stacklevel=2)
    return samples
