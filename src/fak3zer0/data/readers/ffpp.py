"""FaceForensics++ (Rössler et al., ICCV 2019), as its download script lays it out.

Native layout::

    ROOT/
      original_sequences/youtube/<c>/videos/000.mp4 ...            real (c = raw | c23 | c40)
      original_sequences/actors/<c>/videos/01__exit_phone_room.mp4  real, DeepFakeDetection actors (optional)
      manipulated_sequences/<Method>/<c>/videos/000_003.mp4 ...    fake: target 000, source 003
        Method: Deepfakes, Face2Face, FaceSwap, NeuralTextures, FaceShifter, DeepFakeDetection (optional)

    splits_dir/ train.json val.json test.json   official splits: lists of ["071", "054"] pairs

Group: the ids a fake ties together (``000_003`` joins originals 000 and 003), closed over all
fakes present, so a pair and all its fakes share a group (``ffpp:000_003``). The official split
files list exactly these pairs. DeepFakeDetection videos group by the filmed actor (``ffpp-dfd:01``)
and are hash-split (the official JSONs do not cover them).
"""
from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Sequence

from fak3zer0.data.readers._common import list_media, root_dir
from fak3zer0.data.samples import Sample
from fak3zer0.data.splits import group_split
from fak3zer0.errors import DatasetError

SOURCE = "FaceForensics++"
METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
COMPRESSIONS = ("raw", "c23", "c40")
_PAIR = re.compile(r"^(\d+)_(\d+)$")
_DFD_REAL = re.compile(r"^(\d+)__")
_DFD_FAKE = re.compile(r"^(\d+)_(\d+)__")


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def read_official_splits(splits_dir: str | os.PathLike) -> dict[str, str]:
    """``video id -> split`` from FF++'s train.json / val.json / test.json."""
    d = Path(splits_dir)
    missing = [n for n in ("train.json", "val.json", "test.json") if not (d / n).is_file()]
    if missing:
        raise DatasetError(f"FaceForensics++ splits_dir {d} is missing {', '.join(missing)}")
    out: dict[str, str] = {}
    for split in ("train", "val", "test"):
        path = d / f"{split}.json"
        try:
            pairs = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"FaceForensics++: cannot read {path} ({exc})") from None
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise DatasetError(f"FaceForensics++: {path} must be a JSON list of [target, source] id pairs")
        for pair in pairs:
            for vid in pair:
                vid = str(vid)
                if out.get(vid, split) != split:
                    raise DatasetError(f"FaceForensics++: id {vid} is in both {out[vid]}.json and {split}.json")
                out[vid] = split
    return out


def read_ffpp(root: str | os.PathLike, *, compression: str = "c23", methods: Sequence[str] | None = None,
              splits_dir: str | os.PathLike | None = None, fractions: Sequence[float] = (0.8, 0.1, 0.1),
              seed: int = 0) -> list[Sample]:
    """Read FF++ at one ``compression`` (raw / c23 / c40).

    ``methods``: None = every known method folder present at that compression; naming one that is
    not there is an error. ``splits_dir``: folder with the official train/val/test JSONs; without it
    groups are hash-split with ``fractions``.
    """
    if compression not in COMPRESSIONS:
        raise DatasetError(f"FaceForensics++: compression {compression!r} is not one of {COMPRESSIONS}")
    base = root_dir(root, "FaceForensics++")
    orig_dir = base / "original_sequences" / "youtube" / compression / "videos"
    if not orig_dir.is_dir():
        have = sorted(p.name for p in (base / "original_sequences" / "youtube").glob("*") if p.is_dir()) \
            if (base / "original_sequences" / "youtube").is_dir() else []
        raise DatasetError(f"not a FaceForensics++ tree at {compression}: {base} is missing "
                           f"'original_sequences/youtube/{compression}/videos/'"
                           + (f" (compressions present: {', '.join(have)})" if have else ""))
    manip = base / "manipulated_sequences"
    present = [m for m in METHODS if (manip / m / compression / "videos").is_dir()]
    if methods is None:
        chosen = present
    else:
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise DatasetError(f"FaceForensics++: unknown method(s) {unknown}; known: {list(METHODS)}")
        absent = [m for m in methods if m not in present]
        if absent:
            raise DatasetError("FaceForensics++: " + ", ".join(
                f"'manipulated_sequences/{m}/{compression}/videos/'" for m in absent) + f" missing under {base}")
        chosen = list(methods)
    if not chosen:
        raise DatasetError(f"not a FaceForensics++ tree at {compression}: {base} has no "
                           f"'manipulated_sequences/<Method>/{compression}/videos/' for any of {list(METHODS)}")
    official = read_official_splits(splits_dir) if splits_dir is not None else None

    # (path, label, method, video_id, ids for grouping)
    items: list[tuple[Path, int, str, str, tuple[str, ...]]] = []
    for p in list_media(orig_dir):
        items.append((p, 0, "none", f"youtube/{p.stem}", (p.stem,)))
    for method in chosen:
        if method == "DeepFakeDetection":
            continue
        for p in list_media(manip / method / compression / "videos"):
            m = _PAIR.match(p.stem)
            if not m:
                raise DatasetError(f"FaceForensics++: {method} video {p.name} is not named <target>_<source>.mp4")
            items.append((p, 1, method, f"{method}/{p.stem}", (m.group(1), m.group(2))))
    uf = _UnionFind()
    for *_, ids in items:
        for i in ids:
            uf.find(i)
        if len(ids) == 2:
            uf.union(*ids)
    members: dict[str, list[str]] = {}
    for i in list(uf.parent):
        members.setdefault(uf.find(i), []).append(i)
    names = {r: "_".join(sorted(v)) if len(v) <= 4 else f"{min(v)}+{len(v) - 1}" for r, v in members.items()}

    samples: list[Sample] = []
    unlisted: set[str] = set()
    for path, label, method, vid, ids in items:
        group = "ffpp:" + names[uf.find(ids[0])]
        if official is not None:
            found = {official[i] for i in ids if i in official}
            if len(found) > 1:
                raise DatasetError(f"FaceForensics++: {vid} joins ids from different official splits {sorted(found)}")
            split = found.pop() if found else None
            if split is None:
                unlisted.add(vid)
                split = group_split(group, fractions, seed)
        else:
            split = group_split(group, fractions, seed)
        samples.append(Sample(path=str(path), label=label, video_id=vid, group=group, split=split, source=SOURCE,
                              method=method, kind="video", root=str(base)))
    if unlisted:
        warnings.warn(f"FaceForensics++: {len(unlisted)} video(s) are in no official split file and were hash-split "
                      f"(e.g. {sorted(unlisted)[:3]})", stacklevel=2)
    if "DeepFakeDetection" in chosen:
        samples += _read_dfd(base, manip, compression, fractions, seed)
    return samples


def _read_dfd(base: Path, manip: Path, compression: str, fractions: Sequence[float], seed: int) -> list[Sample]:
    out = []
    actors = base / "original_sequences" / "actors" / compression / "videos"
    for p in list_media(actors):
        m = _DFD_REAL.match(p.stem)
        group = f"ffpp-dfd:{m.group(1) if m else p.stem}"
        out.append(Sample(path=str(p), label=0, video_id=f"actors/{p.stem}", group=group,
                          split=group_split(group, fractions, seed), source=SOURCE, method="none", kind="video",
                          root=str(base)))
    for p in list_media(manip / "DeepFakeDetection" / compression / "videos"):
        m = _DFD_FAKE.match(p.stem)
        group = f"ffpp-dfd:{m.group(1) if m else p.stem}"
        out.append(Sample(path=str(p), label=1, video_id=f"DeepFakeDetection/{p.stem}", group=group,
                          split=group_split(group, fractions, seed), source=SOURCE, method="DeepFakeDetection",
                          kind="video", root=str(base)))
    return out
