"""Python API: ``from fak3zer0 import Detector``."""
from fak3zer0.api.results import VERDICTS, FaceVerdict, FrameScore, VideoVerdict  # noqa: F401
