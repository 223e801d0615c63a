"""Typed request/response models of the REST API (they generate the OpenAPI schema)."""
from __future__ import annotations

from datetime import datetime
from typing import Literal, Optional
from uuid import UUID

from pydantic import BaseModel, Field

Status = Literal["queued", "running", "done", "failed"]


class FrameResult(BaseModel):
    index: int = Field(description="frame number in the video (0 for an image)")
    time_s: float = Field(description="time of the frame, seconds")
    box: list[float] = Field(min_length=4, max_length=4, description="face box x1, y1, x2, y2 in pixels")
    fake_probability: float = Field(ge=0, le=1)


class FaceResult(BaseModel):
    track_id: int
    fake_probability: float = Field(ge=0, le=1)
    frames: list[FrameResult]
    heatmap: Optional[str] = Field(None, description="URL of this face's heat map PNG (crop beside Grad-CAM overlay)")


class DetectResult(BaseModel):
    """The same object ``fak3zer0 detect --json --heatmap DIR`` prints for one input, except that ``path`` is
    the uploaded file's name and each face's ``heatmap`` is a URL on this server."""

    path: str
    verdict: Literal["real", "fake", "no_face", "error"]
    fake_probability: Optional[float] = Field(None, ge=0, le=1)
    faces: list[FaceResult]
    frames_used: int
    model: str
    seconds: float
    error: Optional[str] = None


class AnalysisSummary(BaseModel):
    id: UUID
    status: Status
    progress: float = Field(ge=0, le=1, description="0..1")
    filename: str = Field(description="the uploaded file's name, for display only")
    size_bytes: int
    sha256: str = Field(description="content hash of the upload (the file's name in the data folder)")
    model: str
    model_version: Optional[str] = Field(None, description="weights digest; known once the analysis ran")
    frames: int = Field(description="frames to sample over the clip (an image is one frame)")
    created_at: datetime
    updated_at: datetime
    error: Optional[str] = None
    verdict: Optional[Literal["real", "fake", "no_face", "error"]] = None
    fake_probability: Optional[float] = Field(None, ge=0, le=1)
    queue_position: Optional[int] = Field(None, description="analyses ahead of this one while queued")


class Analysis(AnalysisSummary):
    result: Optional[DetectResult] = Field(None, description="when done: the `detect --json` object")


class AnalysisList(BaseModel):
    items: list[AnalysisSummary]
    total: int
    offset: int
    limit: int


class ModelInfo(BaseModel):
    name: str = Field(description="what to send as the `model` form field")
    architecture: str
    version: str
    threshold: float
    source: Literal["checkpoint", "shipped", "registry"]
    default: bool
    description: str = ""


class ModelList(BaseModel):
    default: str
    models: list[ModelInfo]


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    workers: int
    queued: int
    running: int
    auth: bool = Field(description="whether /api calls need a token")


class ErrorMessage(BaseModel):
    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrors(BaseModel):
    """422 body (FastAPI's shape): one entry per invalid field."""

    detail: list[FieldError]
