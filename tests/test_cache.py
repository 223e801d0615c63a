"""Face-crop cache: statuses, arrays per docs/cache-format.md, resume, crash leftovers, pool workers."""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from fak3zer0.data import Sample  # noqa: E402
from fak3zer0.data import cache as cache_mod  # noqa: E402
from fak3zer0.data.cache import FaceCropCache, preprocess, read_index, sample_key  # noqa: E402
from fak3zer0.errors import DatasetError  # noqa: E402
from fak3zer0.faces.mtcnn import mtcnn_weights_dir  # noqa: E402

pytestmark = pytest.mark.skipif(mtcnn_weights_dir() is None,
                                reason="MTCNN weights (facenet-pytorch wheel) not installed")

S = 64  # crop size: small keeps the test quick
SETTINGS = dict(crop_size=S, frames=6, max_tracks=2, progress=False)


def _face_patch() -> np.ndarray:
    from skimage import data

    return cv2.resize(data.astronaut()[20:240, 130:320], (95, 110), interpolation=cv2.INTER_AREA)


def write_clip(path: Path, n: int = 6, face: bool = True, step: int = 9) -> None:
    import av

    patch = _face_patch()
    with av.open(str(path), "w") as c:
        st = c.add_stream("mpeg4", rate=8)
        st.width, st.height, st.pix_fmt = 192, 160, "yuv420p"
        for i in range(n):
            fr = np.full((160, 192, 3), 90, np.uint8)
            if face:
                x, y = 8 + i * step, 20 + (i % 3) * 5
                fr[y:y + 110, x:x + 95] = patch
            else:
                fr[40:100, 20 + i * 10:80 + i * 10] = (200, 60, 40)  # a moving block, no face
            for p in st.encode(av.VideoFrame.from_ndarray(fr, format="rgb24")):
                c.mux(p)
        for p in st.encode():
            c.mux(p)


def _png(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", np.ascontiguousarray(img[:, :, ::-1]))[1].tobytes()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, list[Sample]]:
    root = tmp_path_factory.mktemp("media")
    write_clip(root / "face_a.mp4")
    write_clip(root / "face_b.mp4", step=5)
    write_clip(root / "noface.mp4", face=False)
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(200))
    patch = _face_patch()
    canvas = np.full((180, 160, 3), 120, np.uint8)
    canvas[30:140, 30:125] = patch
    cv2.imwrite(str(root / "still.jpg"), canvas[:, :, ::-1])
    # WildDeepfake-style sequences: face-crop frames (one blank, where detection must fall back)
    seq = root / "wdf" / "real_train" / "0" / "0"
    seq.mkdir(parents=True)
    padded = cv2.copyMakeBorder(patch, 20, 20, 20, 20, cv2.BORDER_REPLICATE)
    for f in (3, 7):
        (seq / f"{f}.png").write_bytes(_png(padded))
    (seq / "9.png").write_bytes(_png(np.full((90, 80, 3), 128, np.uint8)))
    tar_path = root / "wdf" / "fake_train" / "5.tar.gz"
    tar_path.parent.mkdir(parents=True)
    with tarfile.open(tar_path, "w:gz") as tar:
        for f in (1, 2):
            data = _png(padded)
            info = tarfile.TarInfo(f"5/fake/1/{f}.png")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

    def smp(rel: str, label: int, kind: str = "video", member: str = "") -> Sample:
        return Sample(path=str(root / rel), label=label, video_id=rel, group=rel.split(".")[0],
                      split="val" if label else "train", source="src" + str(label), method="m" if label else "none",
                      kind=kind, root=str(root), member=member)

    samples = [smp("face_a.mp4", 0), smp("face_b.mp4", 1), smp("noface.mp4", 0), smp("broken.mp4", 1),
               smp("still.jpg", 0, "image"), smp("wdf/real_train/0/0", 0, "frames"),
               smp("wdf/fake_train/5.tar.gz", 1, "frames", member="5/fake/1")]
    return root, samples


def by_video(cache: FaceCropCache) -> dict[str, dict]:
    return {e["video_id"]: e for e in cache.entries}


def check_entry_arrays(cache: FaceCropCache, entry: dict) -> dict:
    arrays = cache.load(entry)
    k = entry["n_crops"]
    assert k > 0
    expect = {"crops": ((k, S, S, 3), np.uint8), "boxes": ((k, 4), np.float32),
              "landmarks": ((k, 5, 2), np.float32), "frame_index": ((k,), np.int32),
              "time_s": ((k,), np.float32), "track_id": ((k,), np.int16)}
    assert set(arrays) == set(expect)
    for name, (shape, dtype) in expect.items():
        assert arrays[name].shape == shape and arrays[name].dtype == dtype, name
    lm = arrays["landmarks"]
    assert (lm >= 0).all() and (lm < S).all(), "landmarks must lie inside the crop"
    assert (arrays["boxes"][:, 2] > arrays["boxes"][:, 0]).all()
    return arrays


@pytest.fixture(scope="module")
def built(dataset, tmp_path_factory):
    _, samples = dataset
    out = tmp_path_factory.mktemp("cache1")
    counts = preprocess(samples, out, workers=1, **SETTINGS)
    return out, counts


def test_statuses_and_arrays(built, dataset):
    out, counts = built
    root, samples = dataset
    assert counts == {"total": 7, "skipped": 0, "processed": 7, "ok": 5, "no_face": 1, "error": 1}
    cache = FaceCropCache(out)
    meta = cache.meta
    assert meta["format"] == "fak3zer0.cache" and meta["version"] == 1 and meta["crop_size"] == S
    assert meta["frames"] == 6 and meta["face_detector"] == "mtcnn" and meta["max_tracks"] == 2
    assert meta["margin"] == 1.3 and "created" in meta and meta["source"]["roots"] == [str(root)]
    e = by_video(cache)
    assert e["noface.mp4"]["status"] == "no_face" and e["noface.mp4"]["file"] is None
    assert e["broken.mp4"]["status"] == "error" and e["broken.mp4"]["error"]
    for entry in cache.entries:
        for field in cache_mod.INDEX_FIELDS:
            assert field in entry
        s = next(x for x in samples if x.video_id == entry["video_id"])
        assert entry["key"] == hashlib.sha1(s.relpath.encode()).hexdigest() == sample_key(s)
        assert entry["label"] == s.label and entry["split"] == s.split and entry["group"] == s.group
    a = check_entry_arrays(cache, e["face_a.mp4"])
    assert e["face_a.mp4"]["file"] == f"crops/{e['face_a.mp4']['key'][:2]}/{e['face_a.mp4']['key']}.npz"
    assert (a["track_id"] == 0).all() and len(a["crops"]) == 6
    assert (np.diff(a["frame_index"]) > 0).all() and (np.diff(a["time_s"]) > 0).all()
    # the face moves right by 9 px a frame: the boxes follow it
    assert np.all(np.diff(a["boxes"][:, 0]) > 3)
    # landmarks sit where a face's do: eyes above the mouth, left eye left of the right one
    lm = a["landmarks"]
    assert (lm[:, 0, 0] < lm[:, 1, 0]).all() and (lm[:, :2, 1].mean(1) < lm[:, 3:, 1].mean(1)).all()
    still = check_entry_arrays(cache, e["still.jpg"])
    assert len(still["crops"]) == 1 and still["frame_index"][0] == 0
    seq = e["wdf/real_train/0/0"]
    seq_arrays = check_entry_arrays(cache, seq)
    assert seq["n_crops"] == 3 and seq["face_fallback"] == 1 and seq["kind"] == "frames"
    assert list(seq_arrays["frame_index"]) == [3, 7, 9]
    tar_entry = e["wdf/fake_train/5.tar.gz"]
    assert tar_entry["member"] == "5/fake/1" and tar_entry["face_fallback"] == 0
    check_entry_arrays(cache, tar_entry)
    # filters and samples
    assert {x["video_id"] for x in cache.filter(split="val")} == {"face_b.mp4", "wdf/fake_train/5.tar.gz"}
    assert {x["video_id"] for x in cache.filter(label=0, source="src0")} == {"face_a.mp4", "still.jpg",
                                                                           "wdf/real_train/0/0"}
    assert len(cache.filter(status=None)) == 7 and len(cache.filter(status=["error", "no_face"])) == 2
    back = cache.samples(split="train")
    assert all(isinstance(s, Sample) for s in back) and {s.video_id for s in back} == {
        "face_a.mp4", "still.jpg", "wdf/real_train/0/0"}
    with pytest.raises(DatasetError, match="no crops"):
        cache.load(e["noface.mp4"])


def test_resume_redoes_nothing(built, dataset, monkeypatch):
    out, _ = built
    _, samples = dataset
    calls = []
    real = cache_mod.extract_sample
    monkeypatch.setattr(cache_mod, "extract_sample", lambda *a, **k: calls.append(1) or real(*a, **k))
    before_index = (out / "index.jsonl").read_bytes()
    npz = sorted(out.glob("crops/*/*.npz"))
    mtimes = [p.stat().st_mtime_ns for p in npz]
    counts = preprocess(samples, out, workers=1, **SETTINGS)
    assert counts["skipped"] == 7 and counts["processed"] == 0 and calls == []
    assert (out / "index.jsonl").read_bytes() == before_index
    assert [p.stat().st_mtime_ns for p in npz] == mtimes
    # retry_errors redoes exactly the failed one
    counts = preprocess(samples, out, workers=1, retry_errors=True, **SETTINGS)
    assert counts["processed"] == 1 and counts["error"] == 1 and len(calls) == 1
    assert len(FaceCropCache(out).entries) == 7  # latest line per key wins


def test_other_settings_refused(built, dataset):
    out, _ = built
    with pytest.raises(DatasetError, match="crop_size=32"):
        preprocess(dataset[1], out, workers=1, **{**SETTINGS, "crop_size": 32})


def test_killed_run_leftovers(dataset, tmp_path, monkeypatch):
    _, samples = dataset
    out = tmp_path / "cache"
    preprocess(samples[:2], out, workers=1, **SETTINGS)
    index = out / "index.jsonl"
    lines = index.read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])
    # As if killed while appending the last line, with another sample's npz half-written.
    index.write_bytes(b"".join(lines[:-1]) + lines[-1][:25])
    npz = out / last["file"]
    half = npz.with_name(f".{sample_key(samples[2])}.npz.999.tmp")
    half.write_bytes(npz.read_bytes()[:100])
    cache = FaceCropCache(out)  # the truncated line is ignored, not an error
    assert [e["video_id"] for e in cache.entries] == [samples[0].video_id]
    calls = []
    real = cache_mod.extract_sample
    monkeypatch.setattr(cache_mod, "extract_sample", lambda *a, **k: calls.append(a[0].video_id) or real(*a, **k))
    counts = preprocess(samples[:3], out, workers=1, **SETTINGS)
    assert sorted(calls) == sorted([last["video_id"], samples[2].video_id])
    assert counts["skipped"] == 1 and counts["processed"] == 2
    assert not half.exists()
    raw = index.read_bytes()
    assert raw.endswith(b"\n") and all(json.loads(line) for line in raw.splitlines())
    cache = FaceCropCache(out)
    assert len(cache.entries) == 3 and len(read_index(index)) == 3
    check_entry_arrays(cache, cache[last["key"]])
    # an ok entry whose npz was deleted is redone
    npz.unlink()
    calls.clear()
    assert preprocess(samples[:3], out, workers=1, **SETTINGS)["processed"] == 1 and len(calls) == 1
    assert npz.is_file()


def test_two_workers_match_one(built, dataset, tmp_path):
    out1, _ = built
    _, samples = dataset
    out2 = tmp_path / "cache2"
    counts = preprocess(samples, out2, workers=2, **SETTINGS)
    assert counts["processed"] == 7 and counts["ok"] == 5
    one, two = FaceCropCache(out1), FaceCropCache(out2)
    e1, e2 = by_video(one), by_video(two)
    assert set(e1) == set(e2)
    for vid in e1:
        assert e1[vid]["status"] == e2[vid]["status"] and e1[vid]["n_crops"] == e2[vid]["n_crops"], vid
        assert e1[vid]["key"] == e2[vid]["key"]
        if e1[vid]["status"] == "ok":
            a1, a2 = one.load(e1[vid]), check_entry_arrays(two, e2[vid])
            np.testing.assert_allclose(a1["boxes"], a2["boxes"], atol=1.0)
            assert np.array_equal(a1["frame_index"], a2["frame_index"])
    assert preprocess(samples, out2, workers=2, **SETTINGS)["processed"] == 0


def test_same_relative_path_from_two_roots_refused(dataset, tmp_path):
    root, samples = dataset
    other = Sample(path=str(tmp_path / "face_a.mp4"), label=0, video_id="x", group="x", root=str(tmp_path))
    with pytest.raises(DatasetError, match="different cache folders"):
        preprocess([samples[0], other], tmp_path / "c", workers=1, **SETTINGS)


def test_not_a_cache(tmp_path):
    with pytest.raises(DatasetError, match="no cache.json"):
        FaceCropCache(tmp_path)


def test_crops_with_landmarks_match_crops_and_follow_the_resize(tmp_path):
    """The same crops as ``crops()``, evenly spread, with landmarks scaled to the returned size."""
    from conftest import VIDEO_CROP, write_video_cache

    from fak3zer0.data.cache import spread_evenly

    store = FaceCropCache(write_video_cache(tmp_path / "v", n_videos=2, crops=5))
    entry = store.filter()[0]
    raw = store.load(entry)
    for size, at_most in ((VIDEO_CROP, None), (36, 3)):
        crops, marks = store.crops_with_landmarks(entry, size, at_most)
        assert np.array_equal(crops, store.crops(entry, size, at_most))
        take = spread_evenly(len(raw["crops"]), at_most)
        assert crops.shape == (len(take), size, size, 3) and marks.dtype == np.float32
        np.testing.assert_allclose(marks, raw["landmarks"][take] * size / VIDEO_CROP, rtol=1e-6)
    assert spread_evenly(10, 3).tolist() == [0, 4, 9] and spread_evenly(2, 5).tolist() == [0, 1]
