"""The one sample record every dataset reader yields."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Sample:
    """One labelled media item.

    ``group`` is the leakage group: items sharing it (a real video and the fakes made
    from it, or one person) must land in the same split. ``source`` names where the
    item comes from (dataset / generator repo) for cross-source evaluation.
    """

    path: str            # absolute path of the media file (or folder of frames)
    label: int           # 0 = real, 1 = fake
    video_id: str        # stable id of the clip / image
    group: str           # leakage group (original video, identity, ...)
    split: str = "train"  # train | val | test
    source: str = ""     # dataset / generator source tag
    method: str = ""     # manipulation method, "none" for reals
    kind: str = "video"  # video | image | frames (a folder or tar of face frames)
    root: str = ""       # dataset root the reader was pointed at ("" = unknown); cache keys are relative to it
    member: str = ""     # kind "frames" in an archive: folder inside the archive holding the sequence

    @property
    def relpath(self) -> str:
        """Path relative to ``root`` with ``/`` separators (``::member`` appended for archive members).

        This is what the face-crop cache hashes into its key, so a moved dataset keeps its cache.
        Without a ``root`` it is the absolute path.
        """
        rel = os.path.relpath(self.path, self.root) if self.root else os.path.abspath(self.path)
        rel = rel.replace(os.sep, "/")
        return f"{rel}::{self.member}" if self.member else rel

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
