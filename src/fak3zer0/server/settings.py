"""Settings of ``fak3zer0 serve`` (one dataclass, filled by the CLI or by tests)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from fak3zer0 import defaults

#: Largest ``frames`` value a client may ask for in one analysis.
MAX_FRAMES = 256
#: Bytes allowed in a request body beyond the file itself (boundaries, part headers, small fields).
FORM_OVERHEAD_BYTES = 64 * 1024


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/fak3zer0/server`` (``~/.local/share/fak3zer0/server``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fak3zer0" / "server"


@dataclass
class Settings:
    """Everything the app factory needs.

    Attributes:
        data_dir: uploads (named by sha256), heat maps and temporary files live here.
        db: SQLite file or SQLAlchemy URL for the results store (default: ``data_dir/fak3zer0.sqlite``).
        models: model specs offered to clients (checkpoint path, shipped name or ``arch:weights``);
            the first is the default. Shipped models are offered as well.
        frames: frames sampled per video when the client does not say.
        workers: analysis worker processes (each analyses one file at a time).
        threads: torch threads per worker (0: CPU cores divided by ``workers``).
        max_upload_mb: largest accepted file, in MiB.
        token: when set, every ``/api`` request must carry it (``Authorization: Bearer`` or ``X-API-Token``).
        timeout_s: wall-clock limit of one analysis; past it the worker is stopped and the analysis fails.
        queue_size: analyses waiting for a worker beyond which uploads get 503 + Retry-After.
        cors_origins: origins allowed by CORS (empty: CORS off).
    """

    data_dir: Path = field(default_factory=default_data_dir)
    db: str | None = None
    models: list[str] = field(default_factory=lambda: [defaults.DEFAULT_MODEL])
    frames: int = defaults.DEFAULT_FRAMES
    threshold: float | None = None
    device: str = defaults.DEFAULT_DEVICE
    face_detector: str = defaults.DEFAULT_FACE_DETECTOR
    workers: int = 1
    threads: int = 0
    max_upload_mb: float = 200.0
    token: str | None = None
    timeout_s: float = 600.0
    queue_size: int = 16
    cors_origins: list[str] = field(default_factory=list)
    #: Seconds a worker process may take to start (imports, model load) before its job fails.
    worker_start_timeout_s: float = 180.0
    #: Value of Retry-After when the queue is full.
    retry_after_s: int = 30

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        if isinstance(self.models, str):
            self.models = [self.models]
        self.models = list(self.models) or [defaults.DEFAULT_MODEL]
        if self.token is not None and not self.token.strip():
            self.token = None
        checks = [
            (self.workers >= 1, "workers must be at least 1"),
            (self.threads >= 0, "threads must be 0 (auto) or more"),
            (1 <= self.frames <= MAX_FRAMES, f"frames must be between 1 and {MAX_FRAMES}"),
            (self.max_upload_mb > 0, "max upload size must be positive"),
            (self.timeout_s > 0, "timeout must be positive"),
            (self.queue_size >= 1, "queue size must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                from fak3zer0.errors import ConfigError

                raise ConfigError(message)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def db_url(self) -> str:
        return self.db or str(self.data_dir / "fak3zer0.sqlite")

    @property
    def torch_threads(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) // self.workers)

    # ---- data folder layout (every name below is built by the server, never by a client)
    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def heatmaps_dir(self) -> Path:
        return self.data_dir / "heatmaps"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    def make_dirs(self) -> None:
        for d in (self.data_dir, self.uploads_dir, self.heatmaps_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
