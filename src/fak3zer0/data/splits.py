"""Leakage-safe splits: whole groups go to one split, decided by a hash of the group name.

The hash split is *stable*: a group's split depends only on its own name, the fractions and the
seed, never on which other groups are present, so downloading more of a dataset never moves an
old group from train to test. The price is that the fractions hold only on average over groups
(a tree with a handful of groups can end up with an empty val split).
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter, defaultdict
from typing import Iterable, Sequence

from fak3zer0.data.samples import Sample
from fak3zer0.errors import DatasetError

SPLITS = ("train", "val", "test")


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise DatasetError(f"split fractions must be three non-negative numbers (train, val, test), got {fractions!r}")
    total = float(sum(fractions))
    return tuple(float(f) / total for f in fractions)  # type: ignore[return-value]


def group_split(group: str, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> str:
    """The split ("train" | "val" | "test") a group falls in: a uniform number from sha1(seed, group)."""
    f_train, f_val, _ = _check_fractions(fractions)
    digest = hashlib.sha1(f"{seed}\x00{group}".encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    if u < f_train:
        return "train"
    if u < f_train + f_val:
        return "val"
    return "test"


def split_by_group(samples: Iterable[Sample], fractions: Sequence[float] = (0.8, 0.1, 0.1),
                   seed: int = 0) -> list[Sample]:
    """Return copies of ``samples`` with ``split`` reassigned by :func:`group_split` (all of a group together)."""
    fr = _check_fractions(fractions)
    cache: dict[str, str] = {}
    out = []
    for s in samples:
        split = cache.get(s.group)
        if split is None:
            split = cache[s.group] = group_split(s.group, fr, seed)
        out.append(dataclasses.replace(s, split=split))
    return out


def leave_one_source_out(samples: Iterable[Sample], source: str, *, val_fraction: float = 0.1,
                         seed: int = 0) -> list[Sample]:
    """Cross-source protocol: every sample of ``source`` becomes "test"; the rest is re-split into
    train/val by group. Groups that also occur in the held-out source are dropped from train/val so
    nothing of the test source leaks in.
    """
    samples = list(samples)
    if not any(s.source == source for s in samples):
        known = sorted({s.source for s in samples})
        raise DatasetError(f"no sample has source {source!r}; sources present: {known}")
    held_groups = {s.group for s in samples if s.source == source}
    out = []
    for s in samples:
        if s.source == source:
            out.append(dataclasses.replace(s, split="test"))
        elif s.group not in held_groups:
            out.append(dataclasses.replace(
                s, split=group_split(s.group, (1.0 - val_fraction, val_fraction, 0.0), seed)))
    return out


def straddling_groups(samples: Iterable[Sample]) -> dict[str, set[str]]:
    """Groups found in more than one split, with the splits they are in (empty dict = no leakage)."""
    seen: dict[str, set[str]] = defaultdict(set)
    for s in samples:
        seen[s.group].add(s.split)
    return {g: sp for g, sp in seen.items() if len(sp) > 1}


def summarise(samples: Iterable[Sample], by: Sequence[str] = ("split", "source", "label")) -> str:
    """A plain-text table of sample counts by split / source with real, fake and total columns."""
    samples = list(samples)
    rows: Counter = Counter()
    groups: dict[tuple, set[str]] = defaultdict(set)
    keys = [k for k in by if k != "label"]
    for s in samples:
        k = tuple(getattr(s, f) for f in keys)
        rows[k + (s.label,)] += 1
        groups[k].add(s.group)
    table = []
    for k in sorted({r[:-1] for r in rows}, key=lambda k: tuple(_split_rank(v) for v in k)):
        real, fake = rows.get(k + (0,), 0), rows.get(k + (1,), 0)
        table.append([str(v) for v in k] + [str(real), str(fake), str(real + fake), str(len(groups[k]))])
    total_real = sum(1 for s in samples if s.label == 0)
    table.append(["total"] + [""] * (len(keys) - 1) + [str(total_real), str(len(samples) - total_real),
                                                       str(len(samples)), str(len({s.group for s in samples}))])
    header = list(keys) + ["real", "fake", "total", "groups"]
    widths = [max(len(header[i]), *(len(r[i]) for r in table)) for i in range(len(header))]
    n_text = len(keys)

    def fmt(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < n_text else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    lines = [fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in table]
    return "\n".join(lines)


def _split_rank(v: object) -> tuple[int, str]:
    return (SPLITS.index(v), "") if v in SPLITS else (len(SPLITS), str(v))
