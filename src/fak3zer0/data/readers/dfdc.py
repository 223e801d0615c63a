"""DFDC (Kaggle Deepfake Detection Challenge) training parts.

Native layout::

    ROOT/
      dfdc_train_part_0/
        metadata.json     # {"aaqaifqrwn.mp4": {"label": "FAKE", "original": "kbvibjhfzo.mp4", "split": "train"}, ...}
        aaqaifqrwn.mp4
        ...
      dfdc_train_part_1/
      ...

``ROOT`` may also be a single folder holding ``metadata.json`` and its videos (e.g.
``train_sample_videos``). Every real video and all fakes made from it share the group
``dfdc:<original without .mp4>``, so they never land in different splits.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from fak3zer0.data.readers._common import check_missing_option, missing_files_error, parse_label, root_dir
from fak3zer0.data.samples import Sample
from fak3zer0.data.splits import SPLITS, group_split
from fak3zer0.errors import DatasetError

SOURCE = "DFDC"
FAKE_METHOD = "unknown-DFDC-faceswap"  # DFDC does not say which of its swap methods made a fake


def dfdc_group(name: str) -> str:
    """Leakage group of a DFDC video name (``abc.mp4`` or ``abc``): ``dfdc:abc``."""
    return "dfdc:" + os.path.splitext(os.path.basename(str(name)))[0]


def load_dfdc_metadata(path: str | os.PathLike) -> dict[str, dict]:
    """Read one DFDC ``metadata.json``; DatasetError naming the file and the bad entry when malformed."""
    path = Path(path)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"DFDC: cannot read {path} ({exc})") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"DFDC: {path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"DFDC: {path} must hold a JSON object mapping file names to records")
    for name, rec in meta.items():
        if not isinstance(rec, dict) or "label" not in rec:
            raise DatasetError(f"DFDC: entry {name!r} in {path} has no 'label'")
    return meta


def _parts(root: Path) -> list[Path]:
    parts = sorted(p for p in root.glob("dfdc_train_part_*") if p.is_dir())
    if parts:
        missing = [p.name for p in parts if not (p / "metadata.json").is_file()]
        if missing:
            raise DatasetError(f"DFDC: metadata.json is missing in {', '.join(missing)} (under {root})")
        return parts
    if (root / "metadata.json").is_file():
        return [root]
    raise DatasetError(f"not a DFDC tree: {root} has no 'dfdc_train_part_*/' folders with a metadata.json "
                       "(and no metadata.json of its own)")


def read_dfdc(root: str | os.PathLike, *, split: str | None = None, fractions: Sequence[float] = (0.8, 0.1, 0.1),
              seed: int = 0, missing: str = "error") -> list[Sample]:
    """Read DFDC training parts.

    ``split``: None (default) assigns train/val/test by a hash of the group (see
    :func:`fak3zer0.data.splits.group_split`); ``"metadata"`` keeps each record's own ``split``
    field; ``"train"``/``"val"``/``"test"`` puts everything in that split. ``missing``: "error"
    (default) refuses a part whose metadata lists videos that are not there; "skip" leaves them out.
    """
    check_missing_option(missing)
    if split not in (None, "metadata") + SPLITS:
        raise DatasetError(f"DFDC: split={split!r}: choose None (group hash), 'metadata', 'train', 'val' or 'test'")
    base = root_dir(root, "DFDC")
    samples: list[Sample] = []
    for part in _parts(base):
        meta_path = part / "metadata.json"
        meta = load_dfdc_metadata(meta_path)
        absent = []
        for name in sorted(meta):
            rec = meta[name]
            path = part / name
            if not path.is_file():
                absent.append(f"{part.name}/{name}" if part != base else name)
                continue
            label = parse_label(rec["label"], f"{meta_path} entry {name!r}")
            original = rec.get("original") or None
            if label == 1 and not original:
                raise DatasetError(f"DFDC: FAKE entry {name!r} in {meta_path} has no 'original'")
            group = dfdc_group(original if label == 1 else name)
            if split is None:
                sp = group_split(group, fractions, seed)
            elif split == "metadata":
                sp = str(rec.get("split") or "train")
                if sp == "validation":
                    sp = "val"
            else:
                sp = split
            samples.append(Sample(
                path=str(path), label=label, video_id=os.path.splitext(name)[0], group=group, split=sp,
                source=SOURCE, method=FAKE_METHOD if label else "none", kind="video", root=str(base)))
        if absent and missing == "error":
            raise missing_files_error("DFDC", str(meta_path), absent)
    if not samples:
        raise DatasetError(f"DFDC: no videos found under {base} (metadata.json lists none that exist)")
    return samples
