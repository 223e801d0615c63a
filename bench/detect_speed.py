"""Detection speed on this machine: decode-only vs face detection vs end-to-end, per clip.

    python bench/detect_speed.py [--model fak3zer0-default] [--frames 32] [--threads N]

Generates a 10 s 1080p clip (a pan over scikit-image's astronaut photo; cached in bench/.cache/)
and also times a few real videos from ../shared/data/dev when present. Prints a table and writes
bench/results/detect_speed.json. Figures are ratios measured in the same run, since machines are noisy.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make_1080p_clip(path: Path, seconds: int = 10, fps: int = 30) -> Path:
    import cv2
    from skimage import data

    from fak3zer0.samples import pan_frames, write_video

    if path.exists():
        return path
    big = cv2.resize(data.astronaut(), (1400, 1400), interpolation=cv2.INTER_CUBIC)
    canvas = np.full((1600, 2400, 3), 60, np.uint8)
    canvas[100:1500, 500:1900] = big
    write_video(path, pan_frames(canvas, seconds * fps, (1920, 1080)), fps=fps)
    return path


def time_it(fn, repeat: int = 2) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def decode_all_fps(path: Path) -> float:
    import av

    def run():
        with av.open(str(path)) as c:
            vs = c.streams.video[0]
            vs.thread_type = "AUTO"
            return sum(1 for _ in c.decode(vs))

    t, n = time_it(run, 1)
    return n / t


def bench_clip(detector, path: Path, frames: int) -> dict:
    from fak3zer0.media import probe_media, sample_frames

    info = probe_media(path)
    t_decode, decoded = time_it(lambda: list(sample_frames(path, frames, info)))
    t_faces, _ = time_it(lambda: [detector.face_detector.detect(f.image) for f in decoded], 1)
    t_e2e, verdict = time_it(lambda: detector.detect(path))
    n = len(decoded)
    return {
        "file": path.name, "resolution": f"{info.width}x{info.height}", "duration_s": round(info.duration_s, 2),
        "frames_sampled": n,
        "decode_all_fps": round(decode_all_fps(path), 1),
        "decode_sampled_s": round(t_decode, 3), "decode_sampled_fps": round(n / t_decode, 1),
        "face_detect_fps": round(n / t_faces, 1),
        "end_to_end_s": round(t_e2e, 3),
        "ratio_e2e_over_decode": round(t_e2e / t_decode, 2),
        "verdict": verdict.verdict, "fake_probability": verdict.fake_probability,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="fak3zer0-default")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--real", type=int, default=3, help="how many real dev videos to time (0 = none)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "detect_speed.json")
    args = ap.parse_args()

    from fak3zer0.api.detector import Detector
    from fak3zer0.cli._common import format_table
    from fak3zer0.paths import dev_data_dir

    detector = Detector(args.model, frames=args.frames, threads=args.threads)
    clips = [make_1080p_clip(HERE / ".cache" / "astronaut_1080p_10s.mp4")]
    dev = dev_data_dir()
    if dev and args.real:
        vids = sorted((dev / "videos" / "fake").glob("dfdc_sample_*.mp4"))[:2]
        vids += sorted((dev / "videos" / "real").glob("*.mp4"))[: max(0, args.real - len(vids))]
        clips += vids[: args.real]
    detector.detect(clips[0])  # warm-up (first-call allocations)
    rows = [bench_clip(detector, c, args.frames) for c in clips]
    cols = ["file", "resolution", "decode_all_fps", "decode_sampled_s", "face_detect_fps", "end_to_end_s",
            "ratio_e2e_over_decode", "verdict"]
    print(format_table(cols, [[str(r[c]) for c in cols] for r in rows], "llrrrrrl"))
    import torch

    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(), "python": sys.version.split()[0],
              "torch_threads": torch.get_num_threads(), "model": detector.model_name, "frames": args.frames,
              "face_detector": detector.face_detector_name, "clips": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
