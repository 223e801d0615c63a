"""End to end: the Detector API, `fak3zer0 detect` output formats, and every bad input of issue 3."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from fak3zer0.api.detector import Detector, aggregate
from fak3zer0.api.results import VideoVerdict
from fak3zer0.cli import main as cli_main
from fak3zer0.samples import pan_frames, write_video

RESULT_KEYS = {"path", "verdict", "fake_probability", "faces", "frames_used", "model", "seconds", "error"}
FACE_KEYS = {"track_id", "fake_probability", "frames"}
FRAME_KEYS = {"index", "time_s", "box", "fake_probability"}


@pytest.fixture(scope="module")
def detector(tiny_checkpoint):
    return Detector(str(tiny_checkpoint), frames=6)


def _check_schema(d: dict) -> None:
    assert set(d) >= RESULT_KEYS
    assert d["verdict"] in {"real", "fake", "no_face", "error"}
    for face in d["faces"]:
        assert set(face) >= FACE_KEYS
        assert 0.0 <= face["fake_probability"] <= 1.0
        for fr in face["frames"]:
            assert set(fr) >= FRAME_KEYS and len(fr["box"]) == 4
            assert 0.0 <= fr["fake_probability"] <= 1.0


def test_detect_video_api(detector, media_dir):
    v = detector.detect(media_dir / "astronaut_pan.mp4")
    assert isinstance(v, VideoVerdict)
    assert v.verdict in {"real", "fake"} and v.error is None
    assert v.frames_used == 6 and len(v.faces) == 1
    face = v.faces[0]
    assert len(face.frames) >= 5
    assert v.fake_probability == pytest.approx(max(f.fake_probability for f in v.faces))
    assert face.fake_probability == pytest.approx(np.mean([f.fake_probability for f in face.frames]), abs=1e-6)
    times = [f.time_s for f in face.frames]
    assert times == sorted(times) and times[-1] > 2.0
    d = v.to_dict()
    _check_schema(d)
    assert json.loads(json.dumps(d)) == d
    assert VideoVerdict.from_dict(d).to_dict() == d


def test_public_import_path(tiny_checkpoint, media_dir):
    from fak3zer0 import Detector as PublicDetector

    v = PublicDetector(str(tiny_checkpoint), frames=2).detect(str(media_dir / "astronaut.png"))
    assert v.frames_used == 1 and len(v.faces) == 1


def test_verdict_follows_threshold(tiny_checkpoint, media_dir):
    low = Detector(str(tiny_checkpoint), frames=2, threshold=0.0).detect(media_dir / "astronaut.png")
    high = Detector(str(tiny_checkpoint), frames=2, threshold=1.0).detect(media_dir / "astronaut.png")
    assert low.verdict == "fake" and high.verdict == "real"
    assert low.fake_probability == pytest.approx(high.fake_probability)


def test_fake_frames_counts_the_most_suspicious_faces_frames_at_the_threshold():
    from fak3zer0.api.results import FaceVerdict, FrameScore
    from fak3zer0.cli.detect import fake_frames

    def face(track, probs):
        frames = [FrameScore(i, i / 10, (0, 0, 1, 1), p) for i, p in enumerate(probs)]
        return FaceVerdict(track, float(np.mean(probs)), frames)

    v = VideoVerdict("clip.mp4", "fake", 0.7, [face(0, [0.1, 0.2, 0.3]), face(1, [0.9, 0.4, 0.8, 0.7])], 4)
    assert fake_frames(v, 0.5) == "3/4"                      # face 1 (mean 0.7); 0.4 is below
    assert fake_frames(v, 0.8) == "2/4"                      # at or above: 0.8 counts
    assert fake_frames(VideoVerdict("x.png", "no_face", None, [], 1), 0.5) == "-"


def test_no_face_image(detector, media_dir):
    v = detector.detect(media_dir / "no_face.png")
    assert v.verdict == "no_face" and v.fake_probability is None and v.faces == [] and v.error is None


def test_heatmap_written(detector, media_dir, tmp_path):
    v = detector.detect(media_dir / "astronaut.png", heatmap_dir=tmp_path)
    pngs = list(tmp_path.glob("*.png"))
    assert len(pngs) == 1 and v.faces[0].heatmap == str(pngs[0])
    from PIL import Image

    im = np.asarray(Image.open(pngs[0]))
    assert im.shape[1] == 2 * 256  # crop | overlay
    assert im.std() > 5


def test_batched_score_matches_single(detector, media_dir):
    paths = [media_dir / "astronaut.png", media_dir / "no_face.png", media_dir / "astronaut_pan.mp4"]
    batched = detector.score([detector.prepare(p) for p in paths])
    single = [detector.detect(p) for p in paths]
    for b, s in zip(batched, single):
        assert b.verdict == s.verdict
        if s.fake_probability is not None:
            assert b.fake_probability == pytest.approx(s.fake_probability, abs=1e-5)


def test_aggregate_rules():
    p = np.array([0.1, 0.2, 0.9])
    assert aggregate(p, "mean") == pytest.approx(0.4)
    assert aggregate(p, "median") == pytest.approx(0.2)
    assert 0.2 < aggregate(p, "logit_mean") < 0.5
    assert aggregate(p, "top_half") == pytest.approx(0.55)


# ------------------------------------------------------------------ bad inputs

def _bomb_png(path: Path, w: int = 40000, h: int = 40000) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, media_dir, astronaut):
    d = tmp_path_factory.mktemp("bad")
    good = (media_dir / "astronaut_pan.mp4").read_bytes()
    files = {
        "missing": d / "does_not_exist.mp4",
        "empty": d / "empty.mp4",
        "random": d / "random.mp4",
        "text": d / "notes.mp4",
        "zip": d / "archive.mp4",
        "pdf": d / "paper.mp4",
        "truncated": d / "truncated.mp4",
        "header_only": d / "header.mp4",
        "bomb": d / "bomb.png",
        "dir_like_video": d / "folder.mp4",
        "loop": d / "loop.mp4",
    }
    files["empty"].write_bytes(b"")
    files["random"].write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    files["text"].write_text("this is not a video\n" * 20)
    import zipfile

    with zipfile.ZipFile(files["zip"], "w") as z:
        z.writestr("a.txt", "hello")
    files["pdf"].write_bytes(b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n")
    files["truncated"].write_bytes(good[: len(good) // 2])
    files["header_only"].write_bytes(good[:64])
    _bomb_png(files["bomb"])
    files["dir_like_video"].mkdir()
    os.symlink(d / "loop_b.mp4", files["loop"])
    os.symlink(files["loop"], d / "loop_b.mp4")
    return files


ERROR_CASES = ["missing", "empty", "random", "text", "zip", "pdf", "truncated", "header_only", "bomb",
               "dir_like_video", "loop"]


def test_every_bad_input_is_a_clear_error(bad_inputs, tiny_checkpoint, capsys):
    paths = [str(bad_inputs[k]) for k in ERROR_CASES]
    rc = cli_main(["detect", "--model", str(tiny_checkpoint), "--frames", "4", "--json", "--no-progress", *paths])
    out, err = capsys.readouterr()
    assert rc == 1
    results = json.loads(out)
    assert [r["path"] for r in results] == paths
    for key, r in zip(ERROR_CASES, results):
        _check_schema(r)
        assert r["verdict"] == "error", (key, r)
        assert r["fake_probability"] is None and r["faces"] == []
        assert r["error"] and "\n" not in r["error"], key
    assert "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.startswith("fak3zer0: ")]) == len(paths)
    msgs = {k: r["error"] for k, r in zip(ERROR_CASES, results)}
    assert "no such file" in msgs["missing"]
    assert "empty" in msgs["empty"]
    assert "PDF" in msgs["pdf"] and "ZIP" in msgs["zip"] and "text" in msgs["text"]
    assert "pixel" in msgs["bomb"]
    assert "link loop" in msgs["loop"]
    assert "folder" in msgs["dir_like_video"]


def test_bad_and_good_inputs_together(bad_inputs, media_dir, tiny_checkpoint, tmp_path, astronaut, capsys):
    weird = tmp_path / "we ird $(name) ü;&.mp4"
    write_video(weird, pan_frames(astronaut, 10, (160, 120)))
    one = write_video(tmp_path / "one frame.mp4", pan_frames(astronaut, 1, (160, 120)))
    tiny = tmp_path / "pixel.png"
    from PIL import Image

    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tiny)
    paths = [str(bad_inputs["random"]), str(weird), str(one), str(tiny), str(media_dir / "no_face.png")]
    rc = cli_main(["detect", "--model", str(tiny_checkpoint), "--frames", "4", "--json", "--no-progress", *paths])
    results = json.loads(capsys.readouterr().out)
    assert rc == 1  # one input failed
    verdicts = [r["verdict"] for r in results]
    assert verdicts[0] == "error"
    assert verdicts[1] in {"real", "fake"} and results[1]["path"] == str(weird)
    assert verdicts[2] in {"real", "fake"} and results[2]["frames_used"] == 1
    assert verdicts[3] == "no_face"
    assert verdicts[4] == "no_face"


def test_all_good_exit_zero_and_table(media_dir, tiny_checkpoint, capsys):
    rc = cli_main(["detect", "--model", str(tiny_checkpoint), "--frames", "3", "--no-progress",
                   str(media_dir / "astronaut.png"), str(media_dir / "no_face.png")])
    out = capsys.readouterr().out
    assert rc == 0
    header = out.splitlines()[0].split()
    assert header == ["file", "verdict", "fake_p", "fake_frames", "faces", "frames", "seconds"]
    assert "astronaut.png" in out and "no_face" in out


def test_unknown_model_is_a_clear_error(media_dir, capsys):
    rc = cli_main(["detect", "--model", "no-such-model", str(media_dir / "astronaut.png")])
    assert rc == 2
    assert "unknown model" in capsys.readouterr().err


def test_cli_subprocess_help_and_json(media_dir, tiny_checkpoint):
    """The installed entry point works in a fresh process; stdout is pure JSON (progress goes to stderr)."""
    help_out = subprocess.run([sys.executable, "-m", "fak3zer0.cli", "detect", "--help"], capture_output=True,
                              text=True, check=True).stdout
    for opt in ("--model", "--frames", "--threshold", "--device", "--json", "--heatmap"):
        assert opt in help_out
    proc = subprocess.run([sys.executable, "-m", "fak3zer0.cli", "detect", "--model", str(tiny_checkpoint),
                           "--frames", "2", "--json", "--progress", str(media_dir / "astronaut.png")],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data) == 1 and data[0]["faces"]
