"""Dataset readers on tiny trees built in tmp_path (placeholder files where nothing is decoded)."""
from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from fak3zer0.data import (LAYOUTS, Sample, leave_one_source_out, read_dataset, read_frame_sequence, split_by_group,
                           straddling_groups, summarise)
from fak3zer0.data.readers import list_frame_sequence
from fak3zer0.errors import DatasetError
from fak3zer0.paths import dev_data_dir


def touch(path: Path, data: bytes = b"\x00") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def png(value: int, size: int = 8) -> bytes:
    ok, buf = cv2.imencode(".png", np.full((size, size, 3), value, np.uint8))
    assert ok
    return buf.tobytes()


def no_leak(samples: list[Sample]) -> None:
    assert straddling_groups(samples) == {}


# ------------------------------------------------------------------ DFDC

def make_dfdc(root: Path, n_real: int = 30) -> None:
    for part in range(2):
        meta = {}
        for i in range(part, n_real, 2):
            real = f"r{i:03d}.mp4"
            meta[real] = {"label": "REAL", "split": "train", "original": None}
            for j in range(2):
                meta[f"f{i:03d}_{j}.mp4"] = {"label": "FAKE", "split": "train", "original": real}
        if part == 1:  # a fake whose original lives in the other part
            meta["cross.mp4"] = {"label": "FAKE", "split": "train", "original": "r000.mp4"}
        d = root / f"dfdc_train_part_{part}"
        for name in meta:
            touch(d / name)
        touch(d / "metadata.json", json.dumps(meta).encode())


def test_dfdc_labels_groups_and_splits(tmp_path):
    make_dfdc(tmp_path)
    samples = read_dataset(tmp_path, "dfdc")
    assert len(samples) == 30 * 3 + 1
    by_id = {s.video_id: s for s in samples}
    assert by_id["r000"].label == 0 and by_id["f000_1"].label == 1
    assert by_id["f000_1"].group == by_id["r000"].group == by_id["cross"].group == "dfdc:r000"
    assert by_id["cross"].split == by_id["r000"].split
    assert {s.source for s in samples} == {"DFDC"} and {s.kind for s in samples} == {"video"}
    assert {s.method for s in samples if s.label == 0} == {"none"}
    assert set(Counter(s.split for s in samples)) == {"train", "val", "test"}
    no_leak(samples)
    # deterministic, and the seed changes it
    assert [s.split for s in read_dataset(tmp_path, "dfdc")] == [s.split for s in samples]
    assert [s.split for s in read_dataset(tmp_path, "dfdc", seed=1)] != [s.split for s in samples]
    assert {s.split for s in read_dataset(tmp_path, "dfdc", split="test")} == {"test"}
    assert {s.split for s in read_dataset(tmp_path, "dfdc", split="metadata")} == {"train"}


def test_dfdc_single_folder_with_metadata(tmp_path):
    touch(tmp_path / "a.mp4")
    touch(tmp_path / "metadata.json", json.dumps({"a.mp4": {"label": "REAL", "original": None}}).encode())
    assert [s.video_id for s in read_dataset(tmp_path, "dfdc")] == ["a"]


def test_dfdc_malformed(tmp_path):
    with pytest.raises(DatasetError, match="dfdc_train_part_"):
        read_dataset(tmp_path, "dfdc")
    make_dfdc(tmp_path, n_real=4)
    (tmp_path / "dfdc_train_part_1" / "metadata.json").unlink()
    with pytest.raises(DatasetError, match=r"metadata.json is missing in dfdc_train_part_1"):
        read_dataset(tmp_path, "dfdc")
    make_dfdc(tmp_path, n_real=4)
    (tmp_path / "dfdc_train_part_0" / "f002_1.mp4").unlink()
    with pytest.raises(DatasetError, match=r"dfdc_train_part_0/f002_1.mp4"):
        read_dataset(tmp_path, "dfdc")
    assert len(read_dataset(tmp_path, "dfdc", missing="skip")) == 4 * 3 + 1 - 1
    (tmp_path / "dfdc_train_part_0" / "metadata.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"dfdc_train_part_0.metadata.json is not valid JSON"):
        read_dataset(tmp_path, "dfdc")


# ------------------------------------------------------------------ Celeb-DF

def make_celebdf(root: Path) -> None:
    for p in range(8):
        for c in range(3):
            touch(root / "Celeb-real" / f"id{p}_{c:04d}.mp4")
            touch(root / "Celeb-synthesis" / f"id{p}_id{(p + 1) % 8}_{c:04d}.mp4")
    for i in range(6):
        touch(root / "YouTube-real" / f"{i:05d}.mp4")
    (root / "List_of_testing_videos.txt").write_text(
        "1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id1_id2_0001.mp4\n1 YouTube-real/00003.mp4\n")


def test_celebdf_official_test_and_identity_groups(tmp_path):
    make_celebdf(tmp_path)
    samples = read_dataset(tmp_path, "celebdf")
    assert len(samples) == 8 * 3 * 2 + 6
    by_id = {s.video_id: s for s in samples}
    assert by_id["id3_0001"].label == 0 and by_id["id3_id4_0001"].label == 1 and by_id["00002"].label == 0
    assert by_id["id3_id4_0001"].group == by_id["id3_0002"].group == "celebdf:id3"  # the target's identity
    assert by_id["00002"].group != by_id["00003"].group
    assert {s.video_id for s in samples if s.split == "test"} == {"id0_0000", "id1_id2_0001", "00003"}
    no_leak([s for s in samples if s.split != "test"])  # train/val identity-disjoint
    assert {s.split for s in samples} <= {"train", "val", "test"}
    everything = read_dataset(tmp_path, "celebdf", official_test=False, fractions=(0.6, 0.2, 0.2))
    no_leak(everything)


def test_celebdf_malformed(tmp_path):
    touch(tmp_path / "Celeb-real" / "id0_0000.mp4")
    touch(tmp_path / "Celeb-synthesis" / "id0_id1_0000.mp4")
    with pytest.raises(DatasetError) as err:
        read_dataset(tmp_path, "celebdf")
    assert "'YouTube-real/'" in str(err.value) and "'List_of_testing_videos.txt'" in str(err.value)
    assert "Celeb-real" not in str(err.value).split("missing", 1)[1]
    touch(tmp_path / "YouTube-real" / "00000.mp4")
    (tmp_path / "List_of_testing_videos.txt").write_text("1 Celeb-real/id9_0000.mp4\n")
    with pytest.raises(DatasetError, match="Celeb-real/id9_0000.mp4"):
        read_dataset(tmp_path, "celebdf")
    (tmp_path / "List_of_testing_videos.txt").write_text("real Celeb-real/id0_0000.mp4\n")
    with pytest.raises(DatasetError, match="line 1"):
        read_dataset(tmp_path, "celebdf")


# ------------------------------------------------------------------ WildDeepfake

def make_tar(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def make_wdf(root: Path) -> None:
    for v in range(2):  # extracted: <video>/<sequence>/<frame>.png
        for s in range(2):
            for f in (10, 2, 30):
                touch(root / "real_train" / str(v) / str(s) / f"{f}.png", png(f))
    make_tar(root / "fake_train" / "0.tar.gz",
             {f"0/fake/{s}/{f}.png": png(f + s) for s in (1, 2) for f in (5, 15, 25, 100)})
    make_tar(root / "fake_train" / "1.tar.gz", {f"1/fake/7/{f}.png": png(f) for f in (1, 2)})
    make_tar(root / "real_test" / "4.tar.gz", {f"4/real/0/{f}.png": png(f) for f in (3, 4)})
    for f in (8, 9):
        touch(root / "fake_test" / "9" / "0" / f"{f}.png", png(f))


def test_wilddeepfake_folders_and_archives(tmp_path):
    make_wdf(tmp_path)
    samples = read_dataset(tmp_path, "wilddeepfake")
    cnt = Counter((s.label, s.split) for s in samples)
    assert cnt == {(0, "train"): 4, (1, "train"): 3, (0, "test"): 1, (1, "test"): 1}
    assert {s.kind for s in samples} == {"frames"} and {s.source for s in samples} == {"WildDeepfake"}
    tars = [s for s in samples if s.path.endswith(".tar.gz")]
    assert sorted(s.member for s in tars) == ["0/fake/1", "0/fake/2", "1/fake/7", "4/real/0"]
    assert len({s.group for s in tars if "fake_train/0.tar.gz" in s.path}) == 1
    no_leak(samples)
    # frames, in frame-number order, from a folder and from an archive
    folder_seq = next(s for s in samples if s.member == "" and s.split == "train")
    assert [int(f[0, 0, 0]) for f in read_frame_sequence(folder_seq)] == [2, 10, 30]
    tar_seq = next(s for s in tars if s.member == "0/fake/2")
    frames = read_frame_sequence(tar_seq)
    assert [int(f[0, 0, 0]) for f in frames] == [7, 17, 27, 102]
    assert frames[0].shape == (8, 8, 3) and frames[0].dtype == np.uint8
    assert len(read_frame_sequence(tar_seq, max_frames=2)) == 2
    assert list_frame_sequence(tar_seq)[0].endswith("/5.png")
    assert tar_seq.relpath == "fake_train/0.tar.gz::0/fake/2"


def test_wilddeepfake_extracted_copy_wins_and_malformed(tmp_path):
    make_wdf(tmp_path)
    for f in (1, 2):  # someone extracted 1.tar.gz beside it: read the folder, not both
        touch(tmp_path / "fake_train" / "1" / "fake" / "7" / f"{f}.png", png(f))
    samples = read_dataset(tmp_path, "wilddeepfake")
    assert sum(1 for s in samples if s.group == "wilddeepfake:fake_train/1") == 1
    import shutil

    shutil.rmtree(tmp_path / "fake_test")
    with pytest.raises(DatasetError, match="'fake_test/'"):
        read_dataset(tmp_path, "wilddeepfake")
    (tmp_path / "fake_test").mkdir()
    with pytest.raises(DatasetError, match="fake_test holds no face sequences"):
        read_dataset(tmp_path, "wilddeepfake")


# ------------------------------------------------------------------ FaceForensics++

FF_METHODS = ("Deepfakes", "FaceSwap", "NeuralTextures")


def make_ffpp(root: Path, n_pairs: int = 12, comps=("c23", "c40")) -> None:
    for c in comps:
        for k in range(n_pairs):
            a, b = f"{2 * k:03d}", f"{2 * k + 1:03d}"
            touch(root / "original_sequences" / "youtube" / c / "videos" / f"{a}.mp4")
            touch(root / "original_sequences" / "youtube" / c / "videos" / f"{b}.mp4")
            for m in FF_METHODS:
                touch(root / "manipulated_sequences" / m / c / "videos" / f"{a}_{b}.mp4")
                touch(root / "manipulated_sequences" / m / c / "videos" / f"{b}_{a}.mp4")
        touch(root / "original_sequences" / "actors" / c / "videos" / "01__kitchen_pan.mp4")
        touch(root / "manipulated_sequences" / "DeepFakeDetection" / c / "videos" / "01_02__kitchen_pan__ABCD1234.mp4")


def test_ffpp_groups_compression_and_hash_split(tmp_path):
    make_ffpp(tmp_path)
    samples = read_dataset(tmp_path, "ffpp")
    assert all("/c23/" in s.path for s in samples)
    assert len(samples) == 12 * 2 * (1 + len(FF_METHODS)) + 2
    by_id = {s.video_id: s for s in samples}
    g = by_id["youtube/000"].group
    assert g == "ffpp:000_001" == by_id["youtube/001"].group == by_id["Deepfakes/001_000"].group
    assert by_id["youtube/000"].label == 0 and by_id["FaceSwap/000_001"].label == 1
    assert by_id["FaceSwap/000_001"].method == "FaceSwap"
    assert by_id["DeepFakeDetection/01_02__kitchen_pan__ABCD1234"].group == by_id["actors/01__kitchen_pan"].group
    no_leak(samples)
    c40 = read_dataset(tmp_path, "ffpp", compression="c40", methods=["Deepfakes"])
    assert all("/c40/" in s.path for s in c40)
    assert {s.method for s in c40} == {"none", "Deepfakes"}
    with pytest.raises(DatasetError, match=r"'original_sequences/youtube/raw/videos/'.*c23, c40"):
        read_dataset(tmp_path, "ffpp", compression="raw")
    with pytest.raises(DatasetError, match=r"'manipulated_sequences/FaceShifter/c23/videos/'"):
        read_dataset(tmp_path, "ffpp", methods=["Deepfakes", "FaceShifter"])


def test_ffpp_official_splits(tmp_path):
    make_ffpp(tmp_path, n_pairs=6, comps=("c23",))
    sd = tmp_path / "splits"
    sd.mkdir()
    lists = {"train": [["000", "001"], ["002", "003"], ["004", "005"], ["006", "007"]],
             "val": [["009", "008"]], "test": [["010", "011"]]}
    for name, pairs in lists.items():
        (sd / f"{name}.json").write_text(json.dumps(pairs))
    samples = read_dataset(tmp_path, "ffpp", splits_dir=sd, methods=list(FF_METHODS))
    by_id = {s.video_id: s.split for s in samples}
    assert by_id["youtube/009"] == by_id["Deepfakes/008_009"] == by_id["NeuralTextures/009_008"] == "val"
    assert by_id["youtube/011"] == by_id["FaceSwap/010_011"] == "test"
    assert by_id["Deepfakes/006_007"] == "train"
    no_leak(samples)
    (sd / "test.json").unlink()
    with pytest.raises(DatasetError, match="missing test.json"):
        read_dataset(tmp_path, "ffpp", splits_dir=sd)


# ------------------------------------------------------------------ folders

def test_folders_any_depth(tmp_path):
    touch(tmp_path / "setA" / "real" / "a.jpg")
    touch(tmp_path / "setA" / "fake" / "b.PNG")
    touch(tmp_path / "setB" / "Fake" / "clips" / "c.mp4")
    touch(tmp_path / "setB" / "real" / "notes.txt")
    touch(tmp_path / "loose.jpg")
    samples = read_dataset(tmp_path, "folders", source="mine")
    got = {Path(s.path).name: (s.label, s.kind) for s in samples}
    assert got == {"a.jpg": (0, "image"), "b.PNG": (1, "image"), "c.mp4": (1, "video")}
    assert {s.source for s in samples} == {"mine"}
    assert len({s.group for s in samples}) == 3
    folder_groups = read_dataset(tmp_path, "folders", group_by="folder")
    assert {s.group for s in folder_groups} == {"folder:setA/real", "folder:setA/fake", "folder:setB/Fake/clips"}


def test_folders_malformed(tmp_path):
    touch(tmp_path / "stuff" / "a.jpg")
    with pytest.raises(DatasetError, match="no folder named 'real/' or 'fake/'"):
        read_dataset(tmp_path, "folders")
    touch(tmp_path / "real" / "readme.txt")
    with pytest.raises(DatasetError, match="hold no image or video files"):
        read_dataset(tmp_path, "folders")
    with pytest.raises(DatasetError, match="does not exist"):
        read_dataset(tmp_path / "nope", "folders")


# ------------------------------------------------------------------ manifest

def make_manifest(root: Path) -> None:
    rows = ["relpath,label,kind,source_repo,source_path,dataset,method"]
    meta = ["videoname,label,original"]
    for i in range(20):
        real, fake = f"r{i:02d}aaaaaaa"[:10], f"f{i:02d}bbbbbbb"[:10]
        meta += [f"{real}.mp4,REAL,", f"{fake}.mp4,FAKE,{real}.mp4"]
        for name, label in ((real, "real"), (fake, "fake")):
            rel = f"images/{label}/dfdc_face224_{name}.jpg"
            touch(root / rel)
            rows.append(f"{rel},{label},image,some/repo,x@1,DFDC-faces,{'none' if label == 'real' else 'swap'}")
    for name, label in (("talk_a", "real"), ("talk_b", "fake"), ("talk_c", "fake")):
        rel = f"videos/{label}/{name}.mp4"
        touch(root / rel)
        rows.append(f"{rel},{label},video,other/repo,y@2,Talk,{'none' if label == 'real' else 'lipsync'}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    touch(root / "labels" / "meta.csv", ("\n".join(meta) + "\n").encode())
    touch(root / "labels" / "groups.csv",
          b"relpath,label,group,label_confidence,note\nvideos/real/talk_a.mp4,real,person:A,high,\n"
          b"videos/fake/talk_b.mp4,fake,person:A,certain,\n")


def test_manifest_groups_from_label_files(tmp_path):
    make_manifest(tmp_path)
    samples = read_dataset(tmp_path / "manifest.csv", "manifest")
    assert len(samples) == 43
    by_id = {Path(s.path).stem: s for s in samples}
    assert by_id["dfdc_face224_f03bbbbbbb"].group == by_id["dfdc_face224_r03aaaaaaa"].group == "dfdc:r03aaaaaaa"
    assert by_id["talk_a"].group == by_id["talk_b"].group == "person:A"
    assert by_id["talk_c"].group == "file:talk_c"
    assert by_id["talk_c"].source == "Talk" and by_id["talk_c"].kind == "video" and by_id["talk_c"].label == 1
    assert by_id["talk_c"].method == "lipsync"
    no_leak(samples)
    assert set(Counter(s.split for s in samples)) == {"train", "val", "test"}
    assert len(read_dataset(tmp_path, "manifest")) == 43  # the folder works too


def test_manifest_malformed(tmp_path):
    make_manifest(tmp_path)
    (tmp_path / "videos" / "fake" / "talk_c.mp4").unlink()
    with pytest.raises(DatasetError, match=r"videos/fake/talk_c.mp4"):
        read_dataset(tmp_path, "manifest")
    assert len(read_dataset(tmp_path, "manifest", missing="skip")) == 42
    (tmp_path / "manifest.csv").write_text("path,lbl\na.jpg,real\n")
    with pytest.raises(DatasetError, match="missing column.*relpath, label"):
        read_dataset(tmp_path, "manifest")
    with pytest.raises(DatasetError, match="does not exist"):
        read_dataset(tmp_path / "elsewhere.csv", "manifest")


# ------------------------------------------------------------------ helpers and dispatch

def test_dispatch_and_helpers(tmp_path):
    assert LAYOUTS == ("dfdc", "celebdf", "wilddeepfake", "ffpp", "folders", "manifest")
    with pytest.raises(DatasetError, match="unknown dataset layout"):
        read_dataset(tmp_path, "imagenet")
    make_dfdc(tmp_path / "dfdc", n_real=10)
    with pytest.raises(DatasetError, match="unexpected keyword"):
        read_dataset(tmp_path / "dfdc", "dfdc", compression="c23")
    make_manifest(tmp_path / "man")
    samples = read_dataset(tmp_path / "dfdc", "dfdc") + read_dataset(tmp_path / "man", "manifest")
    resplit = split_by_group(samples, (0.5, 0.25, 0.25), seed=3)
    no_leak(resplit)
    assert [s.video_id for s in resplit] == [s.video_id for s in samples]
    loso = leave_one_source_out(samples, "DFDC")
    assert {s.split for s in loso if s.source == "DFDC"} == {"test"}
    assert {s.split for s in loso if s.source != "DFDC"} <= {"train", "val"}
    with pytest.raises(DatasetError, match="no sample has source"):
        leave_one_source_out(samples, "nope")
    table = summarise(samples)
    assert "DFDC" in table and "total" in table.splitlines()[-1] and str(len(samples)) in table.splitlines()[-1]


# ------------------------------------------------------------------ the real dev set

@pytest.mark.shared_data
def test_real_dev_manifest():
    dev = dev_data_dir()
    if dev is None:
        pytest.skip("../shared/data/dev/manifest.csv is not available on this machine")
    samples = read_dataset(dev, "manifest")
    cnt = Counter((s.label, s.kind) for s in samples)
    # the totals in shared/data/dev/README.md
    assert cnt == {(1, "image"): 7013, (1, "video"): 59, (0, "image"): 7001, (0, "video"): 56}
    assert straddling_groups(samples) == {}
    dfdc = [s for s in samples if s.source.startswith("DFDC")]
    assert len({s.group for s in dfdc}) > 6000
    # every DFDC fake face joins the group of its original real video, across splits never
    import csv

    with open(dev / "labels" / "dfdc_faces224_metadata_subset.csv", newline="") as f:
        original = {r["videoname"][:-4]: (r["original"] or r["videoname"])[:-4] for r in csv.DictReader(f)}
    split_of: dict[str, set[str]] = {}
    for s in dfdc:
        if "dfdc_face224_" in s.path:
            vid = Path(s.path).stem.replace("dfdc_face224_", "")
            assert s.group == "dfdc:" + original[vid]
        split_of.setdefault(s.group, set()).add(s.split)
    assert all(len(v) == 1 for v in split_of.values())
    fr = Counter(s.split for s in dfdc)
    assert 0.7 < fr["train"] / len(dfdc) < 0.9
