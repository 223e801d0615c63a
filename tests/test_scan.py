"""Batch scanning (issue 8): `fak3zer0 scan`, `results`, `report`.

Small generated clips (160x120, about a second) and a tiny untrained Meso4 checkpoint built here,
so nothing skips for lack of weights; few frames per clip keep it fast on one core.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

FRAMES = 3


# ------------------------------------------------------------------ fixtures

def _checkpoint(path: Path, seed: int) -> Path:
    import torch

    from fak3zer0.models import create_model
    from fak3zer0.models.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    save_checkpoint(path, create_model("meso4").eval(), metrics={"note": "untrained, for tests"})
    return path


def _clips(folder: Path, n: int, first: int = 0) -> list[Path]:
    from skimage import data

    from fak3zer0.samples import pan_frames, write_video

    astro = data.astronaut()
    folder.mkdir(parents=True, exist_ok=True)
    # a different length per clip: different bytes, so every clip has its own content hash
    return [write_video(folder / f"clip{i:02d}.mp4", pan_frames(astro, 8 + i, size=(160, 120)), fps=8)
            for i in range(first, first + n)]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return _checkpoint(tmp_path_factory.mktemp("scan_ckpt") / "tiny_meso4.pt", seed=0)


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory) -> Path:
    """3 clips with a face, a damaged video and a photo without a face (in a subfolder)."""
    import cv2
    from PIL import Image
    from skimage import data

    d = tmp_path_factory.mktemp("scan_media")
    _clips(d, 3)
    (d / "sub").mkdir()
    (d / "sub" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    Image.fromarray(cv2.resize(data.coffee(), (160, 120))).save(d / "sub" / "no_face.png")
    (d / "sub" / "notes.txt").write_text("not media: never listed from a folder\n")
    return d


def _opts(ckpt, **kw):
    from fak3zer0.scan import ScanOptions

    base = dict(model=str(ckpt), frames=FRAMES, device="cpu", workers=0, batch_size=4, max_wait_s=0.2)
    base.update(kw)
    return ScanOptions(**base)


@pytest.fixture(scope="module")
def scanned_db(tmp_path_factory, ckpt, clips_dir) -> Path:
    from fak3zer0.scan import scan

    db = tmp_path_factory.mktemp("scan_db") / "results.sqlite"
    summary = scan([str(clips_dir)], str(db), _opts(ckpt), warn=lambda m: None)
    assert summary.scanned == 5 and not summary.interrupted
    return db


def _rows(db: Path) -> list[dict]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM results ORDER BY path, model_version")]
    finally:
        con.close()


def _by_name(db: Path) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in _rows(db)}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _comparable(db: Path) -> dict[str, tuple]:
    out = {}
    for r in _rows(db):
        res = json.loads(r["result_json"])
        out[r["content_hash"]] = (Path(r["path"]).name, r["verdict"], r["faces"], r["frames_used"], r["size_bytes"],
                                  r["model"], r["model_version"], r["fake_probability"],
                                  [f["fake_probability"] for f in res["faces"]])
    return out


def _assert_same_rows(a: Path, b: Path) -> None:
    ra, rb = _comparable(a), _comparable(b)
    assert ra.keys() == rb.keys()
    for k in ra:
        *fa, pa, fpa = ra[k]
        *fb, pb, fpb = rb[k]
        assert fa == fb, k
        assert (pa is None) == (pb is None) and (pa is None or abs(pa - pb) < 1e-4), (pa, pb)
        assert np.allclose(fpa, fpb, atol=1e-4)


# ------------------------------------------------------------------ scanning

def test_scan_folder_rows_and_statuses(scanned_db, clips_dir, ckpt):
    rows = _by_name(scanned_db)
    assert set(rows) == {"clip00.mp4", "clip01.mp4", "clip02.mp4", "broken.mp4", "no_face.png"}
    for name in ("clip00.mp4", "clip01.mp4", "clip02.mp4"):
        r = rows[name]
        assert r["verdict"] in ("fake", "real") and 0.0 <= r["fake_probability"] <= 1.0
        assert r["faces"] >= 1 and r["duration_s"] > 0.5
        assert r["content_hash"] == _sha256(clips_dir / name)
        assert r["size_bytes"] == (clips_dir / name).stat().st_size
        assert r["error"] is None
    assert rows["no_face.png"]["verdict"] == "no_face" and rows["no_face.png"]["fake_probability"] is None
    bad = rows["broken.mp4"]
    assert bad["verdict"] == "error" and bad["error"] and bad["content_hash"] == _sha256(clips_dir / "sub/broken.mp4")
    for r in rows.values():
        res = json.loads(r["result_json"])  # the `detect --json` object
        assert set(res) == {"path", "verdict", "fake_probability", "faces", "frames_used", "model", "seconds", "error"}
        assert res["path"] == r["path"] and os.path.isabs(r["path"]) and res["verdict"] == r["verdict"]
        assert r["model"] == str(ckpt) and len(r["model_version"]) == 12
        assert r["created_at"] <= r["updated_at"]
    con = sqlite3.connect(scanned_db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT count(*) FROM thumbnails").fetchone()[0] == 3  # one face crop per clip
    assert con.execute("SELECT count(*) FROM scan_files").fetchone()[0] == 5
    con.close()


def test_rerun_rename_rescan_and_model_version(tmp_path, clips_dir):
    from fak3zer0.scan import scan

    folder = tmp_path / "media"
    shutil.copytree(clips_dir, folder)
    model = _checkpoint(tmp_path / "model.pt", seed=0)
    db = tmp_path / "r.sqlite"
    quiet = dict(warn=lambda m: None)

    first = scan([str(folder)], str(db), _opts(model), **quiet)
    assert (first.scanned, first.skipped, first.errors, first.no_face) == (5, 0, 1, 1)
    assert first.fake + first.real == 3

    again = scan([str(folder)], str(db), _opts(model), **quiet)  # everything is already there
    assert (again.scanned, again.skipped) == (0, 5)

    shutil.copy(folder / "clip00.mp4", folder / "sub" / "renamed copy.mp4")  # same bytes, new name
    (folder / "clip01.mp4").rename(folder / "moved.mp4")
    dup = scan([str(folder)], str(db), _opts(model), **quiet)
    assert (dup.scanned, dup.skipped) == (0, 6)
    assert len(_rows(db)) == 5

    before = _by_name(db)
    time.sleep(0.01)
    forced = scan([str(folder)], str(db), _opts(model, rescan=True), **quiet)
    assert forced.scanned == 5 and forced.skipped == 1  # the duplicate is still scanned once only
    after = _by_name(db)
    assert len(_rows(db)) == 5
    assert after["clip00.mp4"]["updated_at"] > before["clip00.mp4"]["updated_at"]
    assert after["clip00.mp4"]["created_at"] == before["clip00.mp4"]["created_at"]

    old_version = after["clip00.mp4"]["model_version"]
    _checkpoint(model, seed=1)  # new weights under the same name: a new model version
    changed = scan([str(folder)], str(db), _opts(model), **quiet)
    assert changed.scanned == 5 and changed.skipped == 1
    rows = _rows(db)
    assert len(rows) == 10 and {r["model_version"] for r in rows} == {old_version, changed.model_version}

    retry = scan([str(folder)], str(db), _opts(model, retry_errors=True), **quiet)
    assert (retry.scanned, retry.errors) == (1, 1) and len(_rows(db)) == 10


def test_sources_lists_globs_and_missing(tmp_path, clips_dir):
    from fak3zer0.scan import expand_sources

    lst = tmp_path / "lists" / "todo.txt"
    lst.parent.mkdir()
    rel = os.path.relpath(clips_dir / "clip00.mp4", lst.parent)
    lst.write_text(f"# comment\n\n{rel}\n{clips_dir / 'sub'}\n{clips_dir / 'nope.mp4'}\n")
    files = expand_sources([f"@{lst}", str(clips_dir / "clip0*.mp4"), str(clips_dir / "clip00.mp4")])
    by = {Path(f.path).name: f for f in files}
    assert [Path(f.path).name for f in files if f.exists] == [
        "clip00.mp4", "broken.mp4", "no_face.png", "clip01.mp4", "clip02.mp4"]  # each once, list order first
    assert by["broken.mp4"].exists and by["broken.mp4"].error is None  # found by the decoder, not by listing
    assert not by["nope.mp4"].exists and "no such file" in by["nope.mp4"].error
    assert [Path(f.path).name for f in expand_sources([str(lst)])] == [Path(f.path).name for f in
                                                                       expand_sources([f"@{lst}"])]
    assert all(os.path.isabs(f.path) for f in files if f.exists)


def test_workers_2_same_rows_as_in_process(tmp_path, scanned_db, clips_dir, ckpt):
    from fak3zer0.scan import scan

    db = tmp_path / "w2.sqlite"
    s = scan([str(clips_dir)], str(db), _opts(ckpt, workers=2, batch_size=2), warn=lambda m: None)
    assert (s.scanned, s.workers) == (5, 2)
    _assert_same_rows(scanned_db, db)


def test_stuck_worker_is_replaced_and_its_file_becomes_an_error_row(tmp_path, ckpt):
    from skimage import data

    from fak3zer0.samples import pan_frames, write_video
    from fak3zer0.scan import scan

    folder = tmp_path / "slow"
    import cv2

    big = cv2.resize(data.astronaut(), (1400, 1400))
    write_video(folder / "slow.mp4", pan_frames(big, 40, (1280, 960)), fps=10)  # 32 frames: well over 0.5 s
    db = tmp_path / "t.sqlite"
    s = scan([str(folder)], str(db), _opts(ckpt, workers=1, frames=32, file_timeout_s=0.02), warn=lambda m: None)
    assert (s.scanned, s.errors) == (1, 1)
    (row,) = _rows(db)
    assert row["verdict"] == "error" and "gave up after 0.02 s" in row["error"]


def test_ray_engine_same_rows(tmp_path, scanned_db, clips_dir, ckpt):
    ray = pytest.importorskip("ray", reason="ray is not installed (optional extra: pip install 'fak3zer0[ray]')")
    from fak3zer0.scan import scan

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        db = tmp_path / "ray.sqlite"
        s = scan([str(clips_dir)], str(db), _opts(ckpt, engine="ray", workers=None), warn=lambda m: None)
        assert (s.scanned, s.engine) == (5, "ray")
        _assert_same_rows(scanned_db, db)
        again = scan([str(clips_dir)], str(db), _opts(ckpt, engine="ray", workers=None), warn=lambda m: None)
        assert (again.scanned, again.skipped) == (0, 5)
    finally:
        ray.shutdown()


def test_ray_missing_is_a_clear_error(monkeypatch, tmp_path, clips_dir, ckpt):
    from fak3zer0.errors import Fak3Zer0Error
    from fak3zer0.scan import scan

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(Fak3Zer0Error, match=r"pip install 'fak3zer0\[ray\]'"):
        scan([str(clips_dir)], str(tmp_path / "x.sqlite"), _opts(ckpt, engine="ray"))


# ------------------------------------------------------------------ kill -9 and resume

def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "fak3zer0.cli", *args]


def _count_rows(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM results").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_killed_scan_resumes_with_one_row_per_file(tmp_path, ckpt):
    n = 10
    folder = tmp_path / "many"
    _clips(folder, n)
    db = tmp_path / "kill.sqlite"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    args = _cli("scan", str(folder), "--db", str(db), "--model", str(ckpt), "--frames", "4", "--device", "cpu",
                "--workers", "0", "--batch-size", "1", "--no-progress", "--json")
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while _count_rows(db) < 1:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no row committed within 60 s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    done_before = _count_rows(db)
    assert 1 <= done_before < n, "the scan was not interrupted mid-way"

    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["scanned"] + summary["skipped"] == n and summary["skipped"] >= done_before
    rows = _rows(db)
    assert len(rows) == n and len({r["path"] for r in rows}) == n and len({r["content_hash"] for r in rows}) == n
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


# ------------------------------------------------------------------ results and report

def test_results_formats(scanned_db, tmp_path, capsys, monkeypatch):
    from fak3zer0.cli import main

    assert main(["results", str(scanned_db)]) == 0
    table = capsys.readouterr().out
    assert "clip00.mp4" in table and "no_face" in table and "error" in table

    assert main(["results", str(scanned_db), "--format", "csv"]) == 0
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 5 and {"path", "verdict", "fake_probability", "content_hash", "model_version"} <= set(rows[0])
    probs = [float(r["fake_probability"]) for r in rows if r["fake_probability"]]
    assert probs == sorted(probs, reverse=True)  # most suspicious first

    assert main(["results", str(scanned_db), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == 5 and all(d["result"]["path"] == d["path"] for d in data)

    fakes = sum(d["verdict"] == "fake" for d in data)
    assert main(["results", str(scanned_db), "--format", "json", "--fake-only"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == fakes

    out = tmp_path / "r.parquet"
    try:
        import pyarrow.parquet as pq
    except ImportError:
        pq = None
    if pq is not None:
        assert main(["results", str(scanned_db), "--format", "parquet", "--out", str(out)]) == 0
        t = pq.read_table(out)
        assert t.num_rows == 5 and "content_hash" in t.column_names
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert main(["results", str(scanned_db), "--format", "parquet", "--out", str(tmp_path / "n.parquet")]) == 2
    assert "pip install pyarrow" in capsys.readouterr().err


def test_report_is_self_contained(scanned_db, tmp_path):
    from fak3zer0.cli import main

    out = tmp_path / "report.html"
    assert main(["report", str(scanned_db), "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and "<svg" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert not re.search(r"https?://", html)
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert html.count("data:image/jpeg;base64,") == 3
    for name in ("clip00.mp4", "clip01.mp4", "clip02.mp4", "broken.mp4"):
        assert name in html
    assert "not a readable video" in html


def test_cli_scan_summary_and_exit_status(tmp_path, clips_dir, ckpt, capsys):
    from fak3zer0.cli import main

    db = tmp_path / "cli.sqlite"
    rc = main(["scan", str(clips_dir / "sub"), str(clips_dir / "missing.mp4"), "--db", str(db), "--model", str(ckpt),
               "--frames", "2", "--device", "cpu", "--workers", "0", "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 1  # finished, but a file in this run is an error
    assert "scanned" in cap.out and "skipped (already in db)" in cap.out and "no face" in cap.out
    assert "missing.mp4: no such file" in cap.err and "broken.mp4" in cap.err
    assert main(["scan", str(tmp_path / "nothing-here"), "--db", str(db), "--model", str(ckpt)]) == 2
