"""Helpers shared by the dataset readers."""
from __future__ import annotations

import os
from pathlib import Path

from fak3zer0.defaults import IMAGE_EXTENSIONS, MEDIA_EXTENSIONS, VIDEO_EXTENSIONS
from fak3zer0.errors import DatasetError

_LABELS = {"real": 0, "fake": 1, "0": 0, "1": 1, "pristine": 0, "original": 0, "manipulated": 1}


def parse_label(value: object, where: str) -> int:
    """``real``/``fake`` (any case), ``REAL``/``FAKE`` or 0/1 -> 0/1; DatasetError naming ``where`` otherwise."""
    key = str(value).strip().lower()
    if key in _LABELS:
        return _LABELS[key]
    raise DatasetError(f"{where}: label {value!r} is neither real nor fake (expected REAL/FAKE, real/fake or 0/1)")


def root_dir(root: str | os.PathLike, layout: str) -> Path:
    p = Path(root).expanduser()
    if not p.exists():
        raise DatasetError(f"{layout} dataset root {str(p)!r} does not exist")
    if not p.is_dir():
        raise DatasetError(f"{layout} dataset root {str(p)!r} is a file, not a folder")
    return p.resolve()


def require(root: Path, names: list[str], layout: str, hint: str = "") -> None:
    """Raise one DatasetError naming every entry of ``names`` missing under ``root``."""
    missing = [n for n in names if not (root / n).exists()]
    if missing:
        listed = ", ".join(f"{n!r}" for n in missing)
        raise DatasetError(f"not a {layout} tree: {root} is missing {listed}" + (f" ({hint})" if hint else ""))


def missing_files_error(layout: str, where: str, missing: list[str]) -> DatasetError:
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    return DatasetError(f"{layout}: {len(missing)} file(s) listed in {where} are missing: {shown} "
                        "(pass missing='skip' to read the rest)")


def media_kind(path: str | os.PathLike) -> str | None:
    """``video`` / ``image`` from the extension, None for anything else."""
    ext = os.path.splitext(str(path))[1].lower()
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    return None


def list_media(folder: Path, exts: tuple[str, ...] = MEDIA_EXTENSIONS) -> list[Path]:
    """Media files directly in ``folder`` (sorted by name)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts)


def check_missing_option(missing: str) -> None:
    if missing not in ("error", "skip"):
        raise DatasetError(f"missing={missing!r}: choose 'error' or 'skip'")
