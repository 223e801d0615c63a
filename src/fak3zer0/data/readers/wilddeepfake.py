"""WildDeepfake (Zi et al., ACM MM 2020): face sequences cut from deepfake videos found online.

Native layout (as published, or with some archives extracted)::

    ROOT/
      real_train/  0.tar.gz  1.tar.gz ...      each archive: folders of face frames, one folder per sequence,
      fake_train/  ...                         frame file name = frame number in the source video
      real_test/   ...
      fake_test/   ...

    or extracted:  real_train/<video>/<sequence>/<frame>.png

The folder names give label and the official split (train/test; no val). One :class:`Sample`
per face sequence, ``kind="frames"``; for an archive ``path`` is the ``.tar.gz`` and ``member``
the folder inside it. Group = the archive / video folder the sequence comes from.
"""
from __future__ import annotations

import functools
import math
import os
import re
import tarfile
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from fak3zer0.data.readers._common import root_dir
from fak3zer0.data.samples import Sample
from fak3zer0.defaults import IMAGE_EXTENSIONS
from fak3zer0.errors import DatasetError, MediaError
from fak3zer0.media.decode import Frame

SOURCE = "WildDeepfake"
SPLIT_FOLDERS = {"real_train": (0, "train"), "fake_train": (1, "train"),
                 "real_test": (0, "test"), "fake_test": (1, "test")}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def _archive_stem(name: str) -> str | None:
    low = name.lower()
    for suf in ARCHIVE_SUFFIXES:
        if low.endswith(suf):
            return name[: -len(suf)]
    return None


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _frame_sort_key(name: str) -> tuple:
    stem = os.path.splitext(os.path.basename(name))[0]
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", stem))


def _frame_number(name: str, pos: int) -> int:
    stem = os.path.splitext(os.path.basename(name))[0]
    digits = re.findall(r"\d+", stem)
    return int(digits[-1]) if digits else pos


@functools.lru_cache(maxsize=64)
def _archive_index(path: str, mtime: float) -> dict[str, tuple[str, ...]]:
    """``{folder inside the archive: sorted image member names}`` (reads the archive once)."""
    seqs: dict[str, list[str]] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for m in tar:
                if m.isfile() and _is_image(m.name):
                    seqs.setdefault(os.path.dirname(m.name.rstrip("/")), []).append(m.name)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DatasetError(f"WildDeepfake: cannot read archive {path} ({type(exc).__name__}: {exc})") from None
    return {k: tuple(sorted(v, key=_frame_sort_key)) for k, v in seqs.items()}


def _folder_sequences(video_dir: Path) -> list[Path]:
    """Folders under (and including) ``video_dir`` that hold image files directly."""
    out = []
    for dirpath, dirs, files in os.walk(video_dir):
        dirs.sort()
        if any(_is_image(f) for f in files):
            out.append(Path(dirpath))
    return out


def _split_dirs(base: Path) -> dict[str, Path]:
    found = {}
    for name in SPLIT_FOLDERS:
        for cand in (name, name.replace("_", " ")):  # the project page writes "real train"
            if (base / cand).is_dir():
                found[name] = base / cand
                break
    missing = [n + "/" for n in SPLIT_FOLDERS if n not in found]
    if missing:
        raise DatasetError(f"not a WildDeepfake tree: {base} is missing {', '.join(repr(m) for m in missing)}")
    return found


def read_wilddeepfake(root: str | os.PathLike) -> list[Sample]:
    """Read WildDeepfake (archives and/or extracted folders); official train/test split, no val."""
    base = root_dir(root, "WildDeepfake")
    samples: list[Sample] = []
    for folder, sdir in _split_dirs(base).items():
        label, split = SPLIT_FOLDERS[folder]
        entries = sorted(sdir.iterdir(), key=lambda p: _frame_sort_key(p.name))
        extracted = {p.name for p in entries if p.is_dir()}
        n_before = len(samples)
        for entry in entries:
            stem = _archive_stem(entry.name) if entry.is_file() else None
            if entry.is_dir():
                video = entry.name
                for seq in _folder_sequences(entry):
                    rel = seq.relative_to(sdir).as_posix()
                    samples.append(_sample(seq, "", label, split, folder, video, rel, base))
            elif stem is not None and stem not in extracted:  # an extracted copy wins over its archive
                index = _archive_index(str(entry), entry.stat().st_mtime)
                for member in sorted(index, key=_frame_sort_key):
                    samples.append(_sample(entry, member, label, split, folder, stem,
                                           f"{stem}/{member}" if member else stem, base))
        if len(samples) == n_before:
            raise DatasetError(f"WildDeepfake: {sdir} holds no face sequences (no *.tar.gz archives and no "
                               "<video>/<sequence>/*.png folders)")
    return samples


def _sample(path: Path, member: str, label: int, split: str, folder: str, video: str, rel: str,
            base: Path) -> Sample:
    return Sample(path=str(path), label=label, video_id=f"{folder}/{rel}", group=f"wilddeepfake:{folder}/{video}",
                  split=split, source=SOURCE, method="unknown-in-the-wild" if label else "none", kind="frames",
                  root=str(base), member=member)


# ------------------------------------------------------------------ reading frames

def list_frame_sequence(sample: Sample) -> list[str]:
    """Frame names of a ``kind="frames"`` sample in frame order (archive members or file paths)."""
    path = Path(sample.path)
    if path.is_dir():
        return [str(p) for p in sorted((p for p in path.iterdir() if p.is_file() and _is_image(p.name)),
                                       key=lambda p: _frame_sort_key(p.name))]
    if path.is_file() and _archive_stem(path.name) is not None:
        index = _archive_index(str(path), path.stat().st_mtime)
        if sample.member not in index:
            raise MediaError(f"archive {path} has no image folder {sample.member!r}")
        return list(index[sample.member])
    raise MediaError(f"{path} is neither a folder of frames nor a .tar/.tar.gz archive")


def _spread(n_total: int, n: int | None) -> list[int]:
    if n is None or n >= n_total:
        return list(range(n_total))
    return sorted({min(n_total - 1, int((i + 0.5) * n_total / n)) for i in range(n)})


def _decode(data: bytes, name: str) -> np.ndarray:
    arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if arr is None:
        raise MediaError(f"frame {name} is not a readable image")
    return np.ascontiguousarray(arr[:, :, ::-1])


def iter_sequence_frames(sample: Sample, max_frames: int | None = None) -> Iterator[Frame]:
    """Yield up to ``max_frames`` frames spread over the sequence, as :class:`~fak3zer0.media.Frame`.

    ``index`` is the frame number from the file name; ``time_s`` is NaN (the sequences carry no
    timestamps). Unreadable single frames are skipped; a sequence with none readable raises MediaError.
    """
    names = list_frame_sequence(sample)
    if not names:
        raise MediaError(f"{sample.path} {sample.member!r} holds no frames")
    picks = _spread(len(names), max_frames)
    wanted = {names[i]: i for i in picks}
    got = 0
    if Path(sample.path).is_dir():
        for name in (names[i] for i in picks):
            try:
                data = Path(name).read_bytes()
                image = _decode(data, name)
            except (OSError, MediaError):
                continue
            got += 1
            yield Frame(index=_frame_number(name, wanted[name]), time_s=math.nan, image=image)
    else:
        # One streaming pass over the archive; members come in archive order, so collect then sort.
        found: dict[str, np.ndarray] = {}
        try:
            with tarfile.open(sample.path, "r|*") as tar:
                for m in tar:
                    if m.name in wanted and m.isfile():
                        f = tar.extractfile(m)
                        if f is not None:
                            try:
                                found[m.name] = _decode(f.read(), m.name)
                            except MediaError:
                                pass
                    if len(found) == len(wanted):
                        break
        except (tarfile.TarError, OSError, EOFError) as exc:
            if not found:
                raise MediaError(f"cannot read archive {sample.path} ({type(exc).__name__}: {exc})") from None
        for name in sorted(found, key=lambda n: wanted[n]):
            got += 1
            yield Frame(index=_frame_number(name, wanted[name]), time_s=math.nan, image=found[name])
    if got == 0:
        raise MediaError(f"no readable frames in {sample.path} {sample.member!r}".rstrip())


def read_frame_sequence(sample: Sample, max_frames: int | None = None) -> list[np.ndarray]:
    """All frames (or ``max_frames`` spread over the sequence) of a ``kind="frames"`` sample, RGB uint8."""
    return [f.image for f in iter_sequence_frames(sample, max_frames)]
