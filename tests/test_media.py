"""Media stage: sniffing, probing, frame sampling spread over the clip, rotation, bounded reads."""
from __future__ import annotations

import numpy as np
import pytest

from fak3zer0.errors import MediaError
from fak3zer0.media import discover_inputs, probe_media, sample_frames
from fak3zer0.media.decode import target_times
from fak3zer0.media.sniff import sniff
from fak3zer0.samples import pan_frames, write_video


def test_probe_video_and_image(media_dir):
    v = probe_media(media_dir / "astronaut_pan.mp4")
    assert v.kind == "video" and (v.width, v.height) == (640, 480)
    assert v.frame_count == 75 and v.fps == pytest.approx(25.0)
    assert v.duration_s == pytest.approx(3.0, abs=0.05)
    i = probe_media(media_dir / "astronaut.png")
    assert i.kind == "image" and (i.width, i.height) == (512, 512) and i.frame_count == 1


def test_samples_spread_over_whole_clip(media_dir):
    frames = list(sample_frames(media_dir / "astronaut_pan.mp4", 8))
    idx = [f.index for f in frames]
    assert len(frames) == 8
    assert idx == sorted(idx) and len(set(idx)) == 8
    assert idx[0] < 10 and idx[-1] > 64, "samples must cover the whole clip, not the first N frames"
    assert all(f.image.shape == (480, 640, 3) and f.image.dtype == np.uint8 for f in frames)
    times = [f.time_s for f in frames]
    assert times[-1] - times[0] > 2.0


def test_more_frames_than_clip_returns_each_frame_once(tmp_path, astronaut):
    path = write_video(tmp_path / "short.mp4", pan_frames(astronaut, 5, (128, 96)))
    frames = list(sample_frames(path, 32))
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]


def test_one_frame_video(tmp_path, astronaut):
    path = write_video(tmp_path / "one.mp4", pan_frames(astronaut, 1, (128, 96)))
    frames = list(sample_frames(path, 32))
    assert len(frames) == 1 and frames[0].image.shape == (96, 128, 3)


def test_rotation_metadata_is_applied(media_dir):
    """The rotated sample is stored sideways with a 90 degree display tag; we must show it upright."""
    upright = next(iter(sample_frames(media_dir / "astronaut_pan.mp4", 1)))
    rotated = next(iter(sample_frames(media_dir / "astronaut_rotated.mp4", 1)))
    assert rotated.image.shape == (480, 640, 3)
    # Same pan position (the middle of each clip): the images should correlate strongly.
    a = upright.image.astype(float).mean(2)
    b = rotated.image.astype(float).mean(2)
    corr = np.corrcoef(a.ravel(), b.ravel())[0, 1]
    assert corr > 0.6, corr


def test_target_times_centred(media_dir):
    info = probe_media(media_dir / "astronaut_pan.mp4")
    t = target_times(info, 3)
    assert t == pytest.approx([0.5, 1.5, 2.5])


@pytest.mark.parametrize("content,expected", [
    (b"", "empty"),
    (b"hello world, this is text\n", "not-media:a text file"),
    (b"%PDF-1.4 blah", "not-media:a PDF document"),
    (b"PK\x03\x04rest", "not-media:a ZIP archive"),
    (b"\x89PNG\r\n\x1a\n0000", "image:png"),
    (b"\xff\xd8\xff\xe0", "image:jpeg"),
])
def test_sniff(tmp_path, content, expected):
    p = tmp_path / "x.mp4"
    p.write_bytes(content)
    assert sniff(p) == expected


def test_random_bytes_named_mp4_is_a_clear_error(tmp_path):
    p = tmp_path / "random.mp4"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(MediaError, match="not a readable video"):
        probe_media(p)


def test_discover_folders_globs_and_missing(tmp_path, media_dir):
    items = discover_inputs([str(media_dir), str(tmp_path / "missing.mp4"), str(media_dir / "*.png")])
    paths = [i.path for i in items]
    assert sum(p.endswith("astronaut_pan.mp4") for p in paths) == 1
    assert any(i.error == "no such file or folder" for i in items)
    assert sum(p.endswith(".png") for p in paths) == 4  # two from the folder, two from the glob
