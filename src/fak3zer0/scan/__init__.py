"""Batch scanning at scale: ``fak3zer0 scan`` / :func:`scan` (see docs/scan.md).

Resumable, idempotent scans of folders, globs and file lists into a results store, with
decoding in worker processes (or Ray actors) and batched inference.
"""
from fak3zer0.scan.pipeline import ScanOptions, default_workers, scan  # noqa: F401
from fak3zer0.scan.records import ScanRecord, ScanSummary, ScanTask  # noqa: F401
from fak3zer0.scan.sources import SourceFile, expand_sources  # noqa: F401
