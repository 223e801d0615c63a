"""Manifest CSV: ``relpath,label,kind,source_repo,source_path,dataset,method`` (the dev set's format).

    FOLDER/
      manifest.csv          relpath is relative to this folder; label real|fake (or 0/1)
      images/... videos/...
      labels/               optional label files that refine the leakage groups:
        *.csv with relpath,group columns            -> group of that file (e.g. dev_videos_groups.csv)
        *.csv with videoname,original columns       -> DFDC originals (e.g. dfdc_faces224_metadata_subset.csv)
        *.json in DFDC metadata.json format         -> DFDC originals (e.g. dfdc_train_sample_videos_metadata.json)

Only ``relpath`` and ``label`` are required. ``source`` = the ``dataset`` column (else
``source_repo``). Group, first match wins: a ``group`` column in the manifest; a relpath,group
label file; for DFDC-derived rows (dataset starting with "DFDC" or a file name starting with
``dfdc_``) the 10-letter DFDC video id in the file name, mapped to its ``original`` through the
DFDC label files (``dfdc:<original>``, so a real video, its fakes and all their crops share a
group); otherwise the file stem (``file:<stem>``). Split: a ``split`` column when present, else a
hash of the group (see :mod:`fak3zer0.data.splits`), so no group straddles splits.
"""
from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Sequence

from fak3zer0.data.readers._common import check_missing_option, media_kind, missing_files_error, parse_label
from fak3zer0.data.samples import Sample
from fak3zer0.data.splits import SPLITS, group_split
from fak3zer0.errors import DatasetError

REQUIRED = ("relpath", "label")
COLUMNS = ("relpath", "label", "kind", "source_repo", "source_path", "dataset", "method")
_DFDC_ID = re.compile(r"^[a-z]{10}$")


def _manifest_path(root: str | os.PathLike) -> Path:
    p = Path(root).expanduser()
    if p.is_dir():
        p = p / "manifest.csv"
    if not p.is_file():
        raise DatasetError(f"manifest: {str(p)!r} does not exist (give the CSV or the folder holding manifest.csv)")
    return p.resolve()


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return [c.strip() for c in (reader.fieldnames or [])], rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"manifest: cannot read {path} ({exc})") from None


def load_label_files(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """``(relpath -> group, DFDC video id -> original id)`` from the files in ``folder`` (labels/)."""
    groups: dict[str, str] = {}
    originals: dict[str, str] = {}
    if not folder.is_dir():
        return groups, originals
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() == ".csv":
            cols, rows = _read_csv(path)
            if {"relpath", "group"} <= set(cols):
                for r in rows:
                    if r.get("relpath") and r.get("group"):
                        groups[r["relpath"].strip()] = r["group"].strip()
            elif {"videoname", "original"} <= set(cols):
                for r in rows:
                    vid = os.path.splitext(r["videoname"].strip())[0]
                    orig = (r.get("original") or "").strip()
                    originals[vid] = os.path.splitext(orig)[0] if orig else vid
        elif path.suffix.lower() == ".json":
            try:
                meta = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(meta, dict) and meta and all(isinstance(v, dict) and "label" in v for v in meta.values()):
                for name, rec in meta.items():
                    vid = os.path.splitext(name)[0]
                    orig = rec.get("original")
                    originals[vid] = os.path.splitext(orig)[0] if orig else vid
    return groups, originals


def dfdc_video_id(relpath: str, known: dict[str, str]) -> str | None:
    """The DFDC video id inside a derived file's name: a name token found in ``known``, else the last
    10-lowercase-letter token (the form of DFDC ids), else None."""
    stem = os.path.splitext(os.path.basename(relpath))[0]
    tokens = re.split(r"[_\-.]", stem)
    for t in tokens:
        if t in known:
            return t
    cands = [t for t in tokens if _DFDC_ID.match(t)]
    return cands[-1] if cands else None


def read_manifest(root: str | os.PathLike, *, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                  missing: str = "error", labels_dir: str | os.PathLike | None = None) -> list[Sample]:
    """Read a manifest CSV (or the folder holding ``manifest.csv``); see the module doc for groups."""
    check_missing_option(missing)
    csv_path = _manifest_path(root)
    base = csv_path.parent
    cols, rows = _read_csv(csv_path)
    absent_cols = [c for c in REQUIRED if c not in cols]
    if absent_cols:
        raise DatasetError(f"manifest {csv_path} is missing column(s) {', '.join(absent_cols)} "
                           f"(expected {','.join(COLUMNS)})")
    groups, originals = load_label_files(Path(labels_dir) if labels_dir else base / "labels")
    samples: list[Sample] = []
    absent: list[str] = []
    for line, r in enumerate(rows, 2):
        rel = (r.get("relpath") or "").strip()
        if not rel:
            raise DatasetError(f"manifest {csv_path} line {line}: empty relpath")
        path = base / rel
        if not path.is_file():
            absent.append(rel)
            continue
        label = parse_label(r.get("label", ""), f"manifest {csv_path.name} line {line}")
        kind = (r.get("kind") or "").strip() or media_kind(rel) or "video"
        dataset = (r.get("dataset") or "").strip()
        source = dataset or (r.get("source_repo") or "").strip() or base.name
        stem = os.path.splitext(os.path.basename(rel))[0]
        group = (r.get("group") or "").strip() or groups.get(rel)
        if not group and (dataset.upper().startswith("DFDC") or stem.lower().startswith("dfdc_")):
            vid = dfdc_video_id(rel, originals)
            if vid:
                group = "dfdc:" + originals.get(vid, vid)
        group = group or "file:" + stem
        split = (r.get("split") or "").strip()
        if split and split not in SPLITS:
            raise DatasetError(f"manifest {csv_path.name} line {line}: split {split!r} is not one of {SPLITS}")
        samples.append(Sample(
            path=str(path), label=label, video_id=os.path.splitext(rel)[0], group=group,
            split=split or group_split(group, fractions, seed), source=source,
            method=(r.get("method") or "").strip() or ("unknown" if label else "none"), kind=kind, root=str(base)))
    if absent and missing == "error":
        raise missing_files_error("manifest", str(csv_path), absent)
    if not samples:
        raise DatasetError(f"manifest {csv_path} lists no existing files")
    return samples
