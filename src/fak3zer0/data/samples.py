"""The one sample record every dataset reader yields."""
from __future__ import annotations

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
