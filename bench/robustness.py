"""Robustness of checkpoints to re-compression and downscaling (issue 6).

    python bench/robustness.py --model fak3zer0-default --model runs/meso4/model.pt \\
        [--exclude-source DFDC] [--max-seconds 10]

Takes the dev videos (../shared/data/dev, manifest layout; by default the talking-face sources,
i.e. not DFDC), writes two degraded copies of each with PyAV: H.264 at CRF 35, and downscaled to
360 p (CRF 23), face-crops all three versions into caches under bench/.cache/robust/ (resumable),
evaluates every model on each version and prints a table (video AUC / log loss / accuracy).
Writes bench/results/robustness.json.
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def reencode(src: Path, dst: Path, *, crf: int, height: int | None, max_seconds: float) -> Path:
    """Re-encode the video stream of ``src`` (H.264, yuv420p) at ``crf``, optionally scaled to ``height``."""
    import av

    if dst.exists():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp.mp4")
    with av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
        vin = inp.streams.video[0]
        rate = vin.average_rate or 25
        stream = out.add_stream("libx264", rate=rate)
        w, h = vin.codec_context.width, vin.codec_context.height
        if height and h > height:
            w, h = int(round(w * height / h / 2) * 2), height
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for frame in inp.decode(vin):
            if frame.time is not None and frame.time > max_seconds:
                break
            # A fresh frame (no source timestamps): the encoder numbers frames at the stream's rate.
            frame = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24", width=w, height=h), format="rgb24")
            for pkt in stream.encode(frame):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    tmp.replace(dst)
    return dst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="checkpoint or shipped name (repeatable)")
    ap.add_argument("--exclude-source", default="DFDC", help="regex on the manifest's source to leave out")
    ap.add_argument("--max-seconds", type=float, default=10.0, help="re-encode at most this much of each clip")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--frames", type=int, default=16, help="frames sampled per video")
    ap.add_argument("--max-videos", type=int, default=0, help="evenly spaced subset of the videos (0 = all)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "robustness.json")
    args = ap.parse_args()

    from fak3zer0.cli._common import format_table
    from fak3zer0.data.cache import preprocess
    from fak3zer0.data.readers import read_dataset
    from fak3zer0.evaluate.runner import evaluate
    from fak3zer0.paths import dev_data_dir

    dev = dev_data_dir()
    if dev is None:
        raise SystemExit("needs ../shared/data/dev")
    samples = [s for s in read_dataset(dev / "manifest.csv", "manifest")
               if s.kind == "video" and not re.search(args.exclude_source, s.source)]
    if args.max_videos and len(samples) > args.max_videos:
        keep = np.linspace(0, len(samples) - 1, args.max_videos).round().astype(int)
        samples = [samples[i] for i in sorted(set(keep.tolist()))]
    work = HERE / ".cache" / "robust"
    versions = {"original": None, "crf35": (35, None), "360p": (23, 360)}
    caches = {}
    for name, enc in versions.items():
        vs = samples
        if enc:
            from dataclasses import replace

            vs = [replace(s, path=str(reencode(Path(s.path), work / name / Path(s.path).name, crf=enc[0],
                                               height=enc[1], max_seconds=args.max_seconds)))
                  for s in samples]
        caches[name] = work / f"cache-{name}-{len(vs)}v-{args.frames}f"
        preprocess(vs, caches[name], crop_size=224, frames=args.frames, max_tracks=2, workers=args.workers, progress=False)
    rows, report = [], {"date": time.strftime("%Y-%m-%d %H:%M"), "videos": len(samples),
                        "exclude_source": args.exclude_source, "results": {}}
    for model in args.model:
        for name, cache in caches.items():
            res = evaluate(model, [str(cache)])
            v = res["video"]
            report["results"].setdefault(model, {})[name] = {"video": v, "frame": res["frame"]}
            rows.append([model, name, f"{v['auc']:.3f}" if v["auc"] is not None else "-",
                         f"{v['log_loss']:.3f}", f"{v['accuracy']:.3f}", str(v["n"])])
    print(format_table(["model", "version", "video AUC", "log loss", "accuracy", "videos"], rows, "llrrrr"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
