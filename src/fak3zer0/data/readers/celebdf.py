"""Celeb-DF (v2).

Native layout::

    ROOT/
      Celeb-real/        id0_0000.mp4 ...            real, id<person>_<clip>
      Celeb-synthesis/   id0_id16_0000.mp4 ...       fake, id<target>_id<source>_<clip>
      YouTube-real/      00000.mp4 ...               real, no identity given
      List_of_testing_videos.txt                     "1 Celeb-real/id0_0000.mp4" (1 = real, 0 = fake)

The testing list is the official test split; everything else is divided into train/val by a
hash of the group. Group = the identity of the person filmed (the *target*, for a fake), so a
real clip and the fakes made over it share a group. YouTube-real clips have no identity: each is
its own group. Note that the official test list shares identities with the rest, so train/val vs
test is *not* identity-disjoint (that is the published protocol); train vs val is.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from fak3zer0.data.readers._common import check_missing_option, list_media, missing_files_error, require, root_dir
from fak3zer0.data.samples import Sample
from fak3zer0.data.splits import group_split
from fak3zer0.errors import DatasetError

SOURCE = "Celeb-DF-v2"
FOLDERS = ("Celeb-real", "Celeb-synthesis", "YouTube-real")
TEST_LIST = "List_of_testing_videos.txt"
_REAL = re.compile(r"^(id\d+)_\d+$")
_FAKE = re.compile(r"^(id\d+)_(id\d+)_\d+$")


def celebdf_group(relpath: str) -> str:
    """Leakage group of a Celeb-DF file (``Celeb-synthesis/id0_id16_0000.mp4`` -> ``celebdf:id0``)."""
    folder, name = relpath.replace("\\", "/").split("/")[-2:]
    stem = os.path.splitext(name)[0]
    m = _FAKE.match(stem) or _REAL.match(stem)
    if folder != "YouTube-real" and m:
        return f"celebdf:{m.group(1)}"
    return f"celebdf:{folder}/{stem}"


def read_test_list(path: Path) -> dict[str, int]:
    """``relpath -> label`` (0 real / 1 fake) from ``List_of_testing_videos.txt``."""
    out: dict[str, int] = {}
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1"):
            raise DatasetError(f"Celeb-DF: {path.name} line {no} is {line!r}; "
                               "expected '<1 real|0 fake> <folder>/<file>'")
        out[parts[1].replace("\\", "/")] = 1 - int(parts[0])  # the list writes 1 for real
    return out


def read_celebdf(root: str | os.PathLike, *, fractions: Sequence[float] = (0.9, 0.1, 0.0), seed: int = 0,
                 official_test: bool = True, missing: str = "error") -> list[Sample]:
    """Read Celeb-DF v2. ``official_test=False`` ignores the testing list and hash-splits everything
    with ``fractions``; with it (default) the non-test part is split by ``fractions`` renormalised to
    train/val (a test fraction there is ignored)."""
    check_missing_option(missing)
    base = root_dir(root, "Celeb-DF")
    require(base, [f + "/" for f in FOLDERS] + [TEST_LIST], "Celeb-DF v2")
    test = read_test_list(base / TEST_LIST)
    absent = [rel for rel in test if not (base / rel).is_file()]
    if absent and missing == "error":
        raise missing_files_error("Celeb-DF", TEST_LIST, absent)
    trainval = (fractions[0], fractions[1], 0.0) if official_test else tuple(fractions)
    if official_test and fractions[0] + fractions[1] <= 0:
        raise DatasetError(f"Celeb-DF: fractions {fractions!r} leave nothing for train/val")
    samples: list[Sample] = []
    for folder in FOLDERS:
        label = 1 if folder == "Celeb-synthesis" else 0
        for path in list_media(base / folder):
            rel = f"{folder}/{path.name}"
            group = celebdf_group(rel)
            if official_test and rel in test:
                if test[rel] != label:
                    raise DatasetError(f"Celeb-DF: {TEST_LIST} labels {rel} as {'fake' if test[rel] else 'real'}, "
                                       f"but it lies in {folder}/")
                split = "test"
            else:
                split = group_split(group, trainval, seed)
            samples.append(Sample(
                path=str(path), label=label, video_id=path.stem, group=group, split=split, source=SOURCE,
                method="celebdf-faceswap" if label else "none", kind="video", root=str(base)))
    if not samples:
        raise DatasetError(f"Celeb-DF: no videos in {', '.join(FOLDERS)} under {base}")
    return samples
