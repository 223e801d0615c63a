"""REST API of ``fak3zer0 serve`` (FastAPI TestClient; a live loopback server for the raw-socket checks).

A tiny untrained meso4 checkpoint is built in a temporary folder, so nothing here needs shipped weights.
"""
from __future__ import annotations

import hashlib
import io
import json
import socket
import uuid
import warnings
import zipfile
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")

from fastapi.testclient import TestClient  # noqa: E402

from fak3zer0.server import Settings, create_app  # noqa: E402
from fak3zer0.server.testing import LiveServer, wait_for_analysis  # noqa: E402

DETECT_KEYS = {"path", "verdict", "fake_probability", "faces", "frames_used", "model", "seconds", "error"}


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    """The generated astronaut image and clip (shared by the server test modules of one session)."""
    from fak3zer0.samples import make_samples

    folder = tmp_path_factory.getbasetemp() / "fak3zer0-server-media"
    image, clip, _rotated, no_face = make_samples(folder)
    return {"image": image, "clip": clip, "no_face": no_face}


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    from fak3zer0.models import create_model
    from fak3zer0.models.checkpoint import save_checkpoint

    path = tmp_path_factory.getbasetemp() / "fak3zer0-server-model" / "tiny.pt"
    if not path.exists():
        save_checkpoint(path, create_model("meso4"), meta={"description": "untrained test model"})
    return path


def make_settings(tmp: Path, checkpoint: Path, **kw) -> Settings:
    kw.setdefault("frames", 4)
    kw.setdefault("threads", 1)
    kw.setdefault("device", "cpu")
    return Settings(data_dir=tmp / "data", models=[str(checkpoint)], **kw)


@pytest.fixture(scope="module")
def served(tmp_path_factory, checkpoint):
    """One running app (worker pool started) shared by the success-path tests."""
    settings = make_settings(tmp_path_factory.mktemp("served"), checkpoint)
    with TestClient(create_app(settings)) as client:
        yield client, settings


def upload(client, path: Path, name: str | None = None, headers: dict | None = None, **fields):
    with open(path, "rb") as f:
        return client.post("/api/v1/analyses", files={"file": (name or path.name, f)},
                           data={k: str(v) for k, v in fields.items()}, headers=headers or {})


def leftover_files(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.tmp_dir.iterdir())


# ------------------------------------------------------------------ success path
@pytest.fixture(scope="module")
def finished(served, media):
    """Upload the clip and the image once; wait for both."""
    client, _ = served
    r_clip = upload(served[0], media["clip"], frames=4)
    r_image = upload(served[0], media["image"], name="../../etc/astronaut photo.png")
    assert r_clip.status_code == 202, r_clip.text
    assert r_image.status_code == 202, r_image.text
    for r in (r_clip, r_image):
        body = r.json()
        assert body["status"] in ("queued", "running")
        assert r.headers["location"] == f"/api/v1/analyses/{body['id']}"
    return {"clip": wait_for_analysis(client, r_clip.json()["id"]),
            "image": wait_for_analysis(client, r_image.json()["id"])}


def test_upload_clip_and_image_until_done(served, finished, media, checkpoint):
    from fak3zer0.models.checkpoint import file_digest

    client, settings = served
    for kind in ("clip", "image"):
        a = finished[kind]
        assert a["status"] == "done", a
        assert a["progress"] == 1.0
        assert a["model"] == "tiny" and a["model_version"] == file_digest(checkpoint)
        assert a["result"]["verdict"] in ("real", "fake")
        assert a["result"]["faces"], "the astronaut's face was not found"
        assert a["verdict"] == a["result"]["verdict"]
        data = media[kind].read_bytes()
        assert a["sha256"] == hashlib.sha256(data).hexdigest() and a["size_bytes"] == len(data)
        # the upload is stored under its content hash only, never under the client's name
        assert (settings.uploads_dir / a["sha256"]).read_bytes() == data
    assert finished["clip"]["frames"] == 4 and finished["clip"]["result"]["frames_used"] == 4
    assert finished["image"]["frames"] == 1
    assert finished["image"]["filename"] == "astronaut photo.png"     # path parts of the client's name dropped
    assert finished["image"]["result"]["path"] == "astronaut photo.png"
    assert sorted(p.name for p in settings.uploads_dir.iterdir()) == sorted(
        {finished["clip"]["sha256"], finished["image"]["sha256"]})
    assert leftover_files(settings) == []


def test_result_is_the_detect_json_object(finished, media, checkpoint, tmp_path, capsys):
    """``result`` has exactly the keys of ``fak3zer0 detect --json --heatmap`` and the same numbers."""
    from fak3zer0.cli import main

    rc = main(["detect", str(media["image"]), "--json", "--model", str(checkpoint), "--device", "cpu",
               "--heatmap", str(tmp_path / "maps"), "--no-progress"])
    assert rc == 0
    cli = json.loads(capsys.readouterr().out)[0]
    api = finished["image"]["result"]
    assert set(api) == set(cli) == DETECT_KEYS
    assert [set(f) for f in api["faces"]] == [set(f) for f in cli["faces"]]
    assert set(api["faces"][0]["frames"][0]) == set(cli["faces"][0]["frames"][0])
    assert api["verdict"] == cli["verdict"]
    assert api["fake_probability"] == pytest.approx(cli["fake_probability"], abs=1e-5)
    assert api["faces"][0]["frames"][0]["box"] == cli["faces"][0]["frames"][0]["box"]
    assert api["frames_used"] == cli["frames_used"]


def test_heatmap_png_served(served, finished):
    client, _ = served
    a = finished["clip"]
    face = a["result"]["faces"][0]
    assert face["heatmap"] == f"/api/v1/analyses/{a['id']}/faces/{face['track_id']}/heatmap.png"
    r = client.get(face["heatmap"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert client.get(f"/api/v1/analyses/{a['id']}/faces/99/heatmap.png").status_code == 404


def test_models_and_health(served):
    client, _ = served
    m = client.get("/api/v1/models").json()
    assert m["default"] == "tiny"
    assert m["models"][0]["name"] == "tiny" and m["models"][0]["architecture"] == "meso4"
    h = client.get("/healthz").json()
    assert h["status"] == "ok" and h["workers"] == 1 and h["auth"] is False


def test_list_pagination(served, finished):
    client, _ = served
    full = client.get("/api/v1/analyses").json()
    assert full["total"] >= 2 and full["offset"] == 0 and full["limit"] == 20
    ids = [a["id"] for a in full["items"]]
    first = client.get("/api/v1/analyses", params={"offset": 0, "limit": 1}).json()
    second = client.get("/api/v1/analyses", params={"offset": 1, "limit": 1}).json()
    assert [a["id"] for a in first["items"]] == ids[:1]
    assert [a["id"] for a in second["items"]] == ids[1:2]
    assert first["total"] == full["total"]
    assert "result" not in first["items"][0]                      # the list is a summary
    created = [a["created_at"] for a in full["items"]]
    assert created == sorted(created, reverse=True)               # newest first
    past = client.get("/api/v1/analyses", params={"offset": 10_000}).json()
    assert past["items"] == [] and past["total"] == full["total"]
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"}):
        assert client.get("/api/v1/analyses", params=bad).status_code == 422


def test_delete_removes_files(served, media):
    """Two analyses of the same file share one upload; it goes with the last of them."""
    client, settings = served
    a = wait_for_analysis(client, upload(client, media["no_face"]).json()["id"])
    b = upload(client, media["no_face"]).json()
    assert a["status"] == "done" and a["result"]["verdict"] == "no_face" and a["sha256"] == b["sha256"]
    stored = settings.uploads_dir / a["sha256"]
    wait_for_analysis(client, b["id"])
    assert client.delete(f"/api/v1/analyses/{a['id']}").status_code == 204
    assert client.get(f"/api/v1/analyses/{a['id']}").status_code == 404
    assert client.delete(f"/api/v1/analyses/{a['id']}").status_code == 404
    assert stored.exists()                                         # still used by b
    assert client.delete(f"/api/v1/analyses/{b['id']}").status_code == 204
    assert not stored.exists()
    assert not (settings.heatmaps_dir / a["id"]).exists() and not (settings.heatmaps_dir / b["id"]).exists()


def test_delete_removes_heatmaps(served, media):
    client, settings = served
    a = wait_for_analysis(client, upload(client, media["image"], name="again.png").json()["id"])
    assert a["result"]["faces"][0]["heatmap"]
    assert any((settings.heatmaps_dir / a["id"]).iterdir())
    assert client.delete(f"/api/v1/analyses/{a['id']}").status_code == 204
    assert not (settings.heatmaps_dir / a["id"]).exists()
    assert client.get(a["result"]["faces"][0]["heatmap"]).status_code == 404
    assert (settings.uploads_dir / a["sha256"]).exists()           # the earlier image analysis still uses it


# ------------------------------------------------------------------ errors
def test_unknown_and_bad_ids(served):
    client, _ = served
    unknown = uuid.uuid4()
    assert client.get(f"/api/v1/analyses/{unknown}").status_code == 404
    assert client.delete(f"/api/v1/analyses/{unknown}").status_code == 404
    assert client.get(f"/api/v1/analyses/{unknown}/faces/0/heatmap.png").status_code == 404
    for bad in ("not-a-uuid", "1234", "%00", "%2e%2e", str(unknown) + "x"):
        assert client.get(f"/api/v1/analyses/{bad}").status_code == 422, bad
        assert client.delete(f"/api/v1/analyses/{bad}").status_code == 422, bad
    # an encoded path never matches the route (404), and never reaches the file system
    assert client.get("/api/v1/analyses/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)
    for track in ("x", "-1", "1.5", "99999999999"):
        assert client.get(f"/api/v1/analyses/{unknown}/faces/{track}/heatmap.png").status_code == 422, track


def test_unsupported_media_415(served, tmp_path):
    client, settings = served
    before = sorted(p.name for p in settings.uploads_dir.iterdir())
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("a.txt", "hello")
    bodies = {
        "text": b"hello, this is only text\n" * 10,
        "zip": zbuf.getvalue(),
        "pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n",
        "random": bytes(range(256)) * 8,
        "empty": b"",
    }
    for kind, data in bodies.items():
        r = client.post("/api/v1/analyses", files={"file": ("clip.mp4", data, "video/mp4")})
        assert r.status_code == 415, (kind, r.text)
        assert "not a video or image" in r.json()["detail"] or kind in ("random", "empty"), r.json()
    assert "ZIP archive" in client.post("/api/v1/analyses", files={"file": ("x.mp4", bodies["zip"])}).json()["detail"]
    # not a multipart form at all
    r = client.post("/api/v1/analyses", content=b'{"file": "x"}', headers={"content-type": "application/json"})
    assert r.status_code == 415
    assert sorted(p.name for p in settings.uploads_dir.iterdir()) == before
    assert leftover_files(settings) == []


def test_form_validation_422(served, media):
    client, settings = served
    assert client.post("/api/v1/analyses", data={"frames": "4"}, files={"other": ("a", b"x")}).status_code == 422
    assert client.post("/api/v1/analyses", files={"nothing": (None, "x")}).status_code == 422
    for fields in ({"frames": "0"}, {"frames": "abc"}, {"frames": "100000"}, {"frames": "\u00b2"},
                   {"frames": "9" * 5000}, {"model": "/etc/passwd"},
                   {"model": "other"}, {"colour": "red"}):
        r = upload(client, media["image"], **fields)
        assert r.status_code == 422, (fields, r.text)
        assert isinstance(r.json()["detail"], list)
    assert leftover_files(settings) == []


@pytest.fixture()
def small_limit(tmp_path, checkpoint):
    """An app with a 100 KiB upload limit; its lifespan is not started (no worker needed)."""
    settings = make_settings(tmp_path, checkpoint, max_upload_mb=0.1)
    return TestClient(create_app(settings)), settings


def test_too_large_413_by_content_length_before_reading(small_limit):
    client, settings = small_limit
    consumed = []

    def body():
        for i in range(100):
            consumed.append(i)
            yield b"x" * 65536

    r = client.post("/api/v1/analyses", content=body(),
                    headers={"content-type": "multipart/form-data; boundary=abc", "content-length": str(100 * 65536)})
    assert r.status_code == 413 and "0.1 MB" in r.json()["detail"]
    assert consumed == []                      # answered from the header alone
    assert leftover_files(settings) == []


def test_too_large_413_streamed_without_content_length(small_limit, media):
    client, settings = small_limit
    data = media["image"].read_bytes()         # 400+ KiB, over the 100 KiB limit
    assert len(data) > settings.max_upload_bytes
    consumed = []
    boundary = "fak3zer0boundary"

    def body():
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
                "Content-Type: image/png\r\n\r\n").encode()
        yield head
        for i in range(0, len(data), 16384):
            consumed.append(i)
            yield data[i:i + 16384]
        yield f"\r\n--{boundary}--\r\n".encode()

    r = client.post("/api/v1/analyses", content=body(),
                    headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert leftover_files(settings) == []      # the partial file is gone


def test_too_large_413_on_a_real_socket(small_limit):
    """A live server answers 413 (1) from the headers alone, before the client sends any body byte, and
    (2) for a chunked body without Content-Length, as soon as the limit is passed, while the client has
    not finished sending."""
    client, settings = small_limit
    with LiveServer(client.app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"POST /api/v1/analyses HTTP/1.1\r\nHost: test\r\n"
                      b"Content-Type: multipart/form-data; boundary=abc\r\nContent-Length: 5000000000\r\n\r\n")
            reply = s.recv(4096)
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]

        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"POST /api/v1/analyses HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n"
                      b"Content-Type: multipart/form-data; boundary=abc\r\n\r\n")
            part = (b"--abc\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\n"
                    + b"\x00" * (settings.max_upload_bytes + 1000))
            s.sendall(b"%x\r\n%s\r\n" % (len(part), part))   # over the limit; the body is not finished
            reply = s.recv(4096)
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert leftover_files(settings) == []


def test_token_401(tmp_path, checkpoint, media):
    settings = make_settings(tmp_path, checkpoint, token="s3cret-token")
    client = TestClient(create_app(settings))       # lifespan not started: nothing is analysed
    some = f"/api/v1/analyses/{uuid.uuid4()}"
    for path in ("/api/v1/models", "/api/v1/analyses", some, some + "/faces/0/heatmap.png"):
        assert client.get(path).status_code == 401, path
        r = client.get(path, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert client.get(path, headers={"X-API-Token": "s3cret-tokenX"}).status_code == 401
    assert client.delete(some).status_code == 401
    assert upload(client, media["image"]).status_code == 401
    assert upload(client, media["image"], headers={"Authorization": "Basic s3cret-token"}).status_code == 401
    assert leftover_files(settings) == [] and not any(settings.uploads_dir.iterdir())
    assert client.get("/api/v1/models", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert client.get("/api/v1/analyses", headers={"X-API-Token": "s3cret-token"}).status_code == 200
    assert client.get(some, headers={"X-API-Token": "s3cret-token"}).status_code == 404
    assert client.get("/healthz").json()["auth"] is True         # health and the page stay open
    assert client.get("/").status_code == 200


def test_queue_full_503(tmp_path, checkpoint, media):
    """With no free worker (lifespan not started) and a queue of one, the second upload is refused."""
    settings = make_settings(tmp_path, checkpoint, queue_size=1, retry_after_s=7)
    client = TestClient(create_app(settings))
    first = upload(client, media["image"])
    assert first.status_code == 202 and first.json()["status"] == "queued" and first.json()["queue_position"] == 0
    r = upload(client, media["clip"])
    assert r.status_code == 503 and r.headers["retry-after"] == "7"
    assert sorted(p.name for p in settings.uploads_dir.iterdir()) == [first.json()["sha256"]]
    assert client.get("/api/v1/analyses").json()["total"] == 1
    assert client.get("/healthz").json()["queued"] == 1


def test_time_limit_fails_the_analysis_then_worker_recovers(tmp_path, checkpoint, media):
    settings = make_settings(tmp_path, checkpoint, timeout_s=0.5)
    with TestClient(create_app(settings)) as client:
        slow = wait_for_analysis(client, upload(client, media["clip"], frames=75).json()["id"])
        assert slow["status"] == "failed" and "time limit" in slow["error"] and slow["result"] is None
        assert not (settings.heatmaps_dir / slow["id"]).exists()
        # the killed worker is replaced for the next analysis
        quick = wait_for_analysis(client, upload(client, media["no_face"]).json()["id"])
        assert quick["status"] == "done", quick


def test_persistence_across_restart(tmp_path, checkpoint, media):
    """Create the app twice on one data folder: results survive, and an analysis a crash left
    'running' is re-queued and finished by the new server."""
    from fak3zer0.store import ResultStore

    settings = make_settings(tmp_path, checkpoint)
    with TestClient(create_app(settings)) as client:
        done = wait_for_analysis(client, upload(client, media["image"]).json()["id"])
    assert done["status"] == "done"
    # simulate a crash in the middle of an analysis
    store = ResultStore.open(settings.db_url)
    crashed = str(uuid.uuid4())
    data = media["no_face"].read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    (settings.uploads_dir / digest).write_bytes(data)
    store.create_analysis(crashed, filename="left-behind.png", content_hash=digest, size_bytes=len(data),
                          options={"model": "tiny", "frames": 1})
    store.update_analysis(crashed, status="running", progress=0.4)
    lost = str(uuid.uuid4())
    store.create_analysis(lost, filename="gone.png", content_hash="0" * 64, size_bytes=1, options={"model": "tiny"})
    store.engine.dispose()

    with TestClient(create_app(settings)) as client:
        again = client.get(f"/api/v1/analyses/{done['id']}").json()
        assert again["status"] == "done" and again["result"] == done["result"]
        assert client.get(done["result"]["faces"][0]["heatmap"]).status_code == 200
        resumed = wait_for_analysis(client, crashed)
        assert resumed["status"] == "done" and resumed["result"]["verdict"] == "no_face"
        failed = client.get(f"/api/v1/analyses/{lost}").json()
        assert failed["status"] == "failed" and "missing" in failed["error"]
        assert client.get("/api/v1/analyses").json()["total"] == 3


def test_page_static_and_security_headers(served):
    client, _ = served
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "Fak3Zer0" in r.text and "/static/app.js" in r.text and "http" not in r.text.split("<body>")[0]
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    for asset in ("/static/app.js", "/static/app.css"):
        assert client.get(asset).status_code == 200
    # CORS is off by default: no CORS headers even for a cross-origin request
    r = client.get("/api/v1/models", headers={"Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in r.headers
    # no CDN-backed docs pages; the schema is served
    assert client.get("/docs").status_code == 404
    assert client.get("/openapi.json").json()["paths"]["/api/v1/analyses"]["post"]["requestBody"]


def test_cors_when_configured(tmp_path, checkpoint):
    client = TestClient(create_app(make_settings(tmp_path, checkpoint, cors_origins=["https://ok.example"])))
    r = client.options("/api/v1/models", headers={"Origin": "https://ok.example", "Access-Control-Request-Method": "GET"})
    assert r.headers["access-control-allow-origin"] == "https://ok.example"
    r = client.get("/api/v1/models", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_bad_default_model_fails_at_startup(tmp_path):
    from fak3zer0.errors import ModelError

    with pytest.raises(ModelError, match="not found"):
        create_app(Settings(data_dir=tmp_path / "d", models=[str(tmp_path / "missing.pt")]))
    with pytest.raises(ModelError, match="unknown model"):
        create_app(Settings(data_dir=tmp_path / "d", models=["no-such-model"]))


def test_cli_serve_options(tmp_path, monkeypatch):
    from fak3zer0.cli import build_parser
    from fak3zer0.cli.serve import build_settings

    monkeypatch.setenv("FAK3ZER0_TOKEN", "from-env")
    args = build_parser().parse_args(["serve", "--model", "a.pt", "--model", "b.pt", "--data-dir", str(tmp_path),
                                      "--max-upload-mb", "5", "--timeout", "30", "--queue-size", "3",
                                      "--cors-origin", "https://x.example", "--workers", "2"])
    s = build_settings(args)
    assert (args.host, args.port) == ("127.0.0.1", 8000)
    assert s.models == ["a.pt", "b.pt"] and s.token == "from-env" and s.max_upload_bytes == 5 * 1024 * 1024
    assert (s.timeout_s, s.queue_size, s.workers, s.cors_origins) == (30.0, 3, 2, ["https://x.example"])
    assert s.db_url == str(tmp_path.resolve() / "fak3zer0.sqlite")
    args = build_parser().parse_args(["serve", "--token", "cli", "--data-dir", str(tmp_path)])
    assert build_settings(args).token == "cli"


def test_one_server_per_data_folder(tmp_path, checkpoint):
    from fak3zer0.errors import ConfigError

    settings = make_settings(tmp_path, checkpoint)
    with TestClient(create_app(settings)):
        with pytest.raises(ConfigError, match="another fak3zer0 server"):
            with TestClient(create_app(settings)):
                pass
    with TestClient(create_app(settings)) as client:     # free again once the first one stopped
        assert client.get("/healthz").status_code == 200
