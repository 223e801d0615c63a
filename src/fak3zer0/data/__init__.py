"""Datasets: readers for published layouts, the face-crop cache, fake synthesis."""
from fak3zer0.data.readers import (LAYOUTS, list_frame_sequence, read_dataset,  # noqa: F401
                                   read_frame_sequence)
from fak3zer0.data.samples import Sample  # noqa: F401
from fak3zer0.data.splits import (group_split, leave_one_source_out, split_by_group,  # noqa: F401
                                  straddling_groups, summarise)


def __getattr__(name):  # the cache and SBI load lazily (torch / OpenCV work only when used)
    if name in ("preprocess", "FaceCropCache"):
        from fak3zer0.data import cache

        return getattr(cache, name)
    if name == "self_blend":
        from fak3zer0.data.sbi import self_blend

        return self_blend
    raise AttributeError(f"module 'fak3zer0.data' has no attribute {name!r}")
