"""Datasets: readers for published layouts, the face-crop cache, fake synthesis."""
from fak3zer0.data.samples import Sample  # noqa: F401
