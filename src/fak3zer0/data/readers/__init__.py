"""Dataset readers: each reads one published layout as it is downloaded and returns :class:`Sample` s.

``read_dataset(root, layout, **opts)`` dispatches on ``layout`` (one of :data:`LAYOUTS`). Every
reader fills label (0 real / 1 fake), video_id, group (leakage group), split, source, method and
kind, and raises :class:`~fak3zer0.errors.DatasetError` naming what is missing when the tree does
not look like the layout. See docs/data.md for the trees.
"""
from __future__ import annotations

import os
from typing import Callable

from fak3zer0.data.readers.celebdf import read_celebdf
from fak3zer0.data.readers.dfdc import read_dfdc
from fak3zer0.data.readers.ffpp import read_ffpp, read_official_splits
from fak3zer0.data.readers.folders import read_folders
from fak3zer0.data.readers.manifest import read_manifest
from fak3zer0.data.readers.wilddeepfake import (iter_sequence_frames, list_frame_sequence, read_frame_sequence,
                                                read_wilddeepfake)
from fak3zer0.data.samples import Sample
from fak3zer0.errors import DatasetError

LAYOUTS = ("dfdc", "celebdf", "wilddeepfake", "ffpp", "folders", "manifest")

READERS: dict[str, Callable[..., list[Sample]]] = {
    "dfdc": read_dfdc,
    "celebdf": read_celebdf,
    "wilddeepfake": read_wilddeepfake,
    "ffpp": read_ffpp,
    "folders": read_folders,
    "manifest": read_manifest,
}


def read_dataset(root: str | os.PathLike, layout: str, **opts) -> list[Sample]:
    """Read the dataset at ``root`` laid out as ``layout``; ``opts`` go to that layout's reader."""
    key = layout.lower().replace("-", "").replace("_", "").replace("+", "p")
    key = {"faceforensics": "ffpp", "faceforensicspp": "ffpp", "celebdfv2": "celebdf", "wdf": "wilddeepfake",
           "csv": "manifest"}.get(key, key)
    if key not in READERS:
        raise DatasetError(f"unknown dataset layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    try:
        return READERS[key](root, **opts)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise DatasetError(f"{key}: {exc}") from None
        raise


__all__ = ["LAYOUTS", "READERS", "read_dataset", "read_dfdc", "read_celebdf", "read_wilddeepfake", "read_ffpp",
           "read_folders", "read_manifest", "read_official_splits", "read_frame_sequence", "list_frame_sequence",
           "iter_sequence_frames"]
