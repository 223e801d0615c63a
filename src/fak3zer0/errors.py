"""Errors with messages written for the person who sees them."""
from __future__ import annotations


class Fak3Zer0Error(Exception):
    """Base class: the message says what went wrong and, where it can, what to do."""


class MediaError(Fak3Zer0Error):
    """The input cannot be read as an image or a video."""


class ModelError(Fak3Zer0Error):
    """A model name, checkpoint or weight file cannot be used."""


class ConfigError(Fak3Zer0Error):
    """A configuration file or override is invalid."""


class DatasetError(Fak3Zer0Error):
    """A dataset tree is missing parts or malformed."""
