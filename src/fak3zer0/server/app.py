"""The FastAPI application: REST API under ``/api/v1``, the web page at ``/``, ``/healthz``.

Build it with :func:`create_app`; ``fak3zer0 serve`` runs it with uvicorn.
"""
from __future__ import annotations

import hmac
import logging
import os
import shutil
import threading
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path as PathParam, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from sqlalchemy import func, select
from starlette.requests import ClientDisconnect

from fak3zer0 import __version__
from fak3zer0.errors import MediaError
from fak3zer0.server import schemas
from fak3zer0.server.catalog import ModelCatalog
from fak3zer0.server.pool import QueueFull, WorkerPool, heatmap_file
from fak3zer0.server.settings import FORM_OVERHEAD_BYTES, MAX_FRAMES, Settings
from fak3zer0.server.uploads import FILE_FIELD, BadForm, UploadTooLarge, multipart_boundary, receive_upload
from fak3zer0.store import ResultStore, analyses

log = logging.getLogger("fak3zer0.server")
STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Sent with every response. The page uses only its own scripts, styles and images (plus blob: images
#: for heat maps fetched with the token).
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
     b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
]

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {
                        FILE_FIELD: {"type": "string", "format": "binary",
                                     "description": "the video or image (type is checked by content, not name)"},
                        "frames": {"type": "integer", "minimum": 1, "maximum": MAX_FRAMES,
                                   "description": "frames sampled over the clip (default: the server's)"},
                        "model": {"type": "string", "description": "a name from GET /api/v1/models"},
                    },
                },
            },
        },
    },
}


def _err(description: str) -> dict[str, Any]:
    return {"model": schemas.ErrorMessage, "description": description}


AUTH_RESPONSES = {401: _err("missing or wrong API token (when the server has one)")}
NOT_FOUND = {404: _err("no such analysis")}


class SecurityHeaders:
    """Pure ASGI middleware (does not buffer or wrap streaming bodies)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message = dict(message, headers=list(message.get("headers", [])) + extra)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _validation_error(field: str, message: str, value: Any = None) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", field), "msg": message, "input": value}])


def _ts(x: float) -> datetime:
    return datetime.fromtimestamp(float(x), tz=timezone.utc)


def create_app(settings: Settings) -> FastAPI:
    """Build the app. Nothing is analysed until the app's lifespan starts (uvicorn or ``with TestClient``)."""
    settings.make_dirs()
    for stale in settings.tmp_dir.glob("upload-*.part"):  # left by an interrupted upload
        stale.unlink(missing_ok=True)
    catalog = ModelCatalog(settings.models)
    catalog.describe(catalog.default)  # fail now, clearly, if the default model cannot be read
    store = ResultStore.open(settings.db_url)
    pool = WorkerPool(settings, store, catalog)
    files_lock = threading.Lock()  # placing/removing uploads vs. creating/deleting their rows

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        pool.start()
        try:
            yield
        finally:
            await run_in_threadpool(pool.stop)
            store.engine.dispose()

    app = FastAPI(
        title="Fak3Zer0",
        version=__version__,
        summary="Offline deepfake detection for videos and images.",
        description="Upload a video or image, poll the analysis, read the verdict. Results are the objects "
                    "`fak3zer0 detect --json` prints. When the server has a token, every /api call needs it "
                    "(`Authorization: Bearer TOKEN` or `X-API-Token: TOKEN`).",
        lifespan=lifespan,
        docs_url=None,   # Swagger UI / ReDoc load scripts from a CDN; this server is offline
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings, app.state.store, app.state.pool, app.state.catalog = settings, store, pool, catalog

    bearer = HTTPBearer(auto_error=False, description="the server's API token")
    api_key = APIKeyHeader(name="X-API-Token", auto_error=False, description="the server's API token")

    def require_token(cred: HTTPAuthorizationCredentials | None = Depends(bearer),
                      key: str | None = Depends(api_key)) -> None:
        if not settings.token:
            return
        given = (cred.credentials if cred else None) or key or ""
        if not hmac.compare_digest(given.encode("utf-8", "replace"), settings.token.encode("utf-8")):
            raise HTTPException(401, "missing or wrong API token", headers={"WWW-Authenticate": "Bearer"})

    api = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)], responses=AUTH_RESPONSES)

    # ------------------------------------------------------------ helpers
    def summary_fields(row: dict[str, Any]) -> dict[str, Any]:
        opts, result = row["options"], row.get("result") or {}
        return dict(
            id=row["id"], status=row["status"], progress=min(max(float(row["progress"] or 0), 0.0), 1.0),
            filename=row["filename"] or "upload", size_bytes=int(row["size_bytes"] or 0),
            sha256=row["content_hash"] or "", model=opts.get("model", ""), model_version=opts.get("model_version"),
            frames=int(opts.get("frames") or settings.frames), created_at=_ts(row["created_at"]),
            updated_at=_ts(row["updated_at"]), error=row["error"], verdict=result.get("verdict"),
            fake_probability=result.get("fake_probability"), queue_position=pool.position(row["id"]),
        )

    def get_row(analysis_id: UUID) -> dict[str, Any]:
        row = store.get_analysis(str(analysis_id))
        if row is None:
            raise HTTPException(404, "no such analysis")
        return row

    def remove_upload_if_unused(content_hash: str) -> None:
        if not content_hash:
            return
        with store.engine.connect() as c:
            n = c.execute(select(func.count()).select_from(analyses)
                          .where(analyses.c.content_hash == content_hash)).scalar_one()
        if n == 0:
            (settings.uploads_dir / content_hash).unlink(missing_ok=True)

    def too_large() -> JSONResponse:
        mb = settings.max_upload_mb
        return JSONResponse({"detail": f"file too large: the limit is {mb:g} MB (server option --max-upload-mb)"},
                            status_code=413, headers={"Connection": "close"})

    def queue_full() -> HTTPException:
        return HTTPException(503, "the analysis queue is full; try again in a little while",
                             headers={"Retry-After": str(settings.retry_after_s)})

    # ------------------------------------------------------------ routes
    @api.post("/analyses", status_code=202, response_model=schemas.Analysis, openapi_extra=UPLOAD_BODY,
              summary="Upload a video or image for analysis",
              responses={400: _err("malformed multipart body or Content-Length"),
                         413: _err("file larger than the server's limit"),
                         415: _err("not a video or image (checked by content), or not a multipart form"),
                         422: {"model": schemas.ValidationErrors,
                               "description": "missing file, bad frames, unknown model or unknown form field"},
                         503: _err("queue full; retry after the Retry-After seconds")})
    async def create_analysis(request: Request, response: Response):
        if pool.is_full():
            raise queue_full()
        length = request.headers.get("content-length")
        if length is not None:
            if not _is_count(length.strip(), 19):
                raise HTTPException(400, "bad Content-Length header")
            if int(length) > settings.max_upload_bytes + FORM_OVERHEAD_BYTES:
                return too_large()  # before reading a single byte of the body
        boundary = multipart_boundary(request.headers.get("content-type", ""))
        if boundary is None:
            raise HTTPException(415, "send the file as multipart/form-data in a field named 'file'")
        try:
            upload = await receive_upload(request, boundary, settings.tmp_dir, settings.max_upload_bytes,
                                          settings.max_upload_bytes + FORM_OVERHEAD_BYTES)
        except UploadTooLarge:
            return too_large()
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening; the partial file is already gone
        except BadForm as exc:
            if exc.field:
                raise _validation_error(exc.field, str(exc)) from None
            raise HTTPException(400, str(exc)) from None
        try:
            unknown = sorted(set(upload.fields) - {"frames", "model"})
            if unknown:
                raise _validation_error(unknown[0], f"unknown form field {unknown[0]!r} (allowed: file, frames, model)")
            frames = settings.frames
            if upload.fields.get("frames", "").strip():
                raw = upload.fields["frames"].strip()
                if not _is_count(raw, 6) or not 1 <= int(raw) <= MAX_FRAMES:
                    raise _validation_error("frames", f"frames must be a whole number from 1 to {MAX_FRAMES}", raw)
                frames = int(raw)
            model = upload.fields.get("model", "").strip() or catalog.default
            if catalog.get(model) is None:
                raise _validation_error("model", f"unknown model; choose one of: {', '.join(catalog.names())}", model)
            try:
                info = await run_in_threadpool(_probe, upload.path)
            except MediaError as exc:
                raise HTTPException(415, f"uploaded file: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - a decoder surprise is still "cannot read this"
                log.warning("probe of an upload failed: %s: %s", type(exc).__name__, exc)
                raise HTTPException(415, "uploaded file: not a readable video or image") from None

            def commit() -> dict[str, Any]:
                with files_lock:
                    if pool.is_full():
                        raise queue_full()
                    final = settings.uploads_dir / upload.sha256
                    if final.exists():
                        upload.discard()
                    else:
                        os.replace(upload.path, final)
                        upload.path = None
                    aid = str(uuid4())
                    store.create_analysis(aid, filename=upload.filename, content_hash=upload.sha256,
                                          size_bytes=upload.size,
                                          options={"model": model, "frames": 1 if info.kind == "image" else frames,
                                                   "kind": info.kind})
                    try:
                        pool.submit(aid)
                    except QueueFull:
                        store.delete_analysis(aid)
                        remove_upload_if_unused(upload.sha256)
                        raise queue_full() from None
                return store.get_analysis(aid)

            row = await run_in_threadpool(commit)
        finally:
            upload.discard()
        response.headers["Location"] = f"/api/v1/analyses/{row['id']}"
        return schemas.Analysis(**summary_fields(row), result=None)

    @api.get("/analyses", response_model=schemas.AnalysisList, summary="List analyses, newest first")
    def list_analyses(offset: int = Query(0, ge=0, le=2**31), limit: int = Query(20, ge=1, le=100)):
        rows, total = store.list_analyses(offset=offset, limit=limit)
        return schemas.AnalysisList(items=[schemas.AnalysisSummary(**summary_fields(r)) for r in rows],
                                    total=total, offset=offset, limit=limit)

    @api.get("/analyses/{analysis_id}", response_model=schemas.Analysis, responses=NOT_FOUND,
             summary="Status, progress and (when done) the result of one analysis")
    def get_analysis(analysis_id: UUID):
        row = get_row(analysis_id)
        return schemas.Analysis(**summary_fields(row), result=row["result"])

    @api.delete("/analyses/{analysis_id}", status_code=204, responses=NOT_FOUND,
                summary="Delete an analysis, its heat maps and (when no other analysis uses it) its upload")
    def delete_analysis(analysis_id: UUID):
        row = get_row(analysis_id)
        aid = str(analysis_id)
        pool.cancel(aid)
        with files_lock:
            store.delete_analysis(aid)
            remove_upload_if_unused(row["content_hash"])
        shutil.rmtree(settings.heatmaps_dir / aid, ignore_errors=True)
        return Response(status_code=204)

    @api.get("/analyses/{analysis_id}/faces/{track}/heatmap.png", response_class=FileResponse,
             responses={200: {"content": {"image/png": {}}, "description": "PNG: face crop beside its heat map"},
                        404: _err("no such analysis, face or heat map")},
             summary="Heat map of one face")
    def get_heatmap(analysis_id: UUID, track: int = PathParam(ge=0, le=10_000)):
        get_row(analysis_id)
        path = heatmap_file(settings, str(analysis_id), track)
        if not path.is_file():
            raise HTTPException(404, "no heat map for this face")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    @api.get("/models", response_model=schemas.ModelList, summary="Models this server offers")
    def list_models():
        models = []
        for name in catalog.names():
            try:
                info = catalog.describe(name)
            except Exception as exc:  # noqa: BLE001 - a broken extra checkpoint must not hide the others
                log.warning("model %s cannot be described: %s", name, exc)
                continue
            if settings.threshold is not None:
                info["threshold"] = settings.threshold
            models.append(schemas.ModelInfo(**info))
        return schemas.ModelList(default=catalog.default, models=models)

    app.include_router(api)

    @app.get("/healthz", response_model=schemas.Health, summary="Liveness (no token needed)")
    def healthz():
        return schemas.Health(status="ok", version=__version__, workers=settings.workers,
                              auth=bool(settings.token), **pool.counts())

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                            headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "X-API-Token", "Content-Type"],
                           expose_headers=["Location", "Retry-After"])
    app.add_middleware(SecurityHeaders)
    return app


def _is_count(text: str, max_digits: int) -> bool:
    """ASCII digits only (``str.isdigit`` also accepts e.g. superscripts, which ``int`` refuses)."""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


def _probe(path: Path):
    from fak3zer0.media.decode import probe_media

    return probe_media(path)
