"""Throughput of `fak3zer0 scan` against decoding alone, and its memory on short vs long clips.

    python bench/scan_throughput.py [--frames 32] [--clips 28] [--real 4] [--model NAME_OR_CKPT]

On a folder of generated 640x480 clips (plus a few real videos from the shared dev set when
present) it measures, in one run:

* decode-only frames/s: the same frames the scanner samples, decoded in one process, nothing else
  (and in one process per core, to show how much the cores add in parallel on this machine);
* prepare-only frames/s: decode + face detection/tracking/crops (``Detector.prepare``), one process;
* scan frames/s and files/min with 1 and 2 worker processes (each in a fresh process with a
  fresh database, like `fak3zer0 scan`; wall clock of the whole scan: imports, model loading,
  worker start-up, hashing, inference, database writes included);
* the scan / decode-only and scan / prepare-only ratios;
* the start-up (until the first file comes back from a worker) and the rate after it, which is
  what a long scan of an archive runs at;
* peak RSS (main process and the largest worker) scanning one short clip and one 10x longer clip;
* model-only inference throughput (face crops/s) on the CPU and, when CUDA is available, the GPU,
  plus a scan with the model on the GPU.

It prints a table and writes bench/results/scan_throughput.json. Everything runs at the default
settings, with the default model (``--model tiny`` uses an untrained Meso4 built on the fly).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL_SAMPLES = ["fake/dfdc_sample_abofeumbvv.mp4", "fake/hyperlips_result_video1.mp4",
                "real/sadtalker_hdtf_RD_Radio2_000.mp4", "real/fomm_demo_old_00.mp4"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def make_clips(folder: Path, n: int, seconds: float, tag: str) -> list[Path]:
    from skimage import data

    from fak3zer0.samples import pan_frames, write_video

    astro = data.astronaut()
    folder.mkdir(parents=True, exist_ok=True)
    frames = int(round(seconds * 25))
    # one extra frame per clip: different bytes, so no clip is a duplicate of another
    return [write_video(folder / f"{tag}{i:02d}.mp4", pan_frames(astro, frames + i), fps=25) for i in range(n)]


def tiny_model(path: Path) -> Path:
    import torch

    from fak3zer0.models import create_model
    from fak3zer0.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(path, create_model("meso4").eval())


def _decode_file(args: tuple[str, int]) -> int:
    from fak3zer0.media import probe_media, sample_frames

    path, frames = args
    info = probe_media(path)
    return sum(1 for _ in sample_frames(path, 1 if info.kind == "image" else frames, info))


def decode_only(files: list[Path], frames: int) -> dict:
    t0 = time.perf_counter()
    n = sum(_decode_file((str(f), frames)) for f in files)
    s = time.perf_counter() - t0
    return {"frames": n, "seconds": round(s, 3), "frames_per_s": round(n / s, 2)}


def decode_parallel(files: list[Path], frames: int, processes: int) -> dict:
    """Decode-only in ``processes`` warm processes: how much this machine's cores add in parallel."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(processes) as pool:
        pool.map(_decode_file, [(str(files[0]), 1)] * processes)  # start-up and imports, not timed
        t0 = time.perf_counter()
        n = sum(pool.map(_decode_file, [(str(f), frames) for f in files], chunksize=1))
        s = time.perf_counter() - t0
    return {"processes": processes, "frames": n, "seconds": round(s, 3), "frames_per_s": round(n / s, 2)}


def prepare_only(files: list[Path], model: str, frames: int) -> tuple[dict, list]:
    from fak3zer0.api.detector import Detector

    det = Detector(model, frames=frames, device="cpu")
    prep = Detector.prepare_only(**det.prepare_settings())
    t0 = time.perf_counter()
    out = [prep.prepare(f) for f in files]
    s = time.perf_counter() - t0
    n = sum(len(p.faces.frames) for p in out if p.faces)
    return {"frames": n, "seconds": round(s, 3), "frames_per_s": round(n / s, 2)}, out


def scan_run(files: list[Path], model: str, frames: int, workers: int, db: Path, device: str = "cpu") -> dict:
    """One scan in a fresh Python process, as `fak3zer0 scan` runs: every start-up cost counts."""
    listing = db.with_suffix(".txt")
    listing.write_text("".join(f"{f}\n" for f in files))
    cmd = [sys.executable, __file__, "--scan-probe", str(listing), "--model", model, "--frames", str(frames),
           "--workers", str(workers), "--device", device, "--db", str(db)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _scan_probe_main(args) -> int:
    t0 = time.perf_counter()  # before fak3zer0.scan is imported: torch's import counts, as in the CLI
    from fak3zer0.scan import ScanOptions, scan

    opts = ScanOptions(model=args.model, frames=args.frames, workers=args.workers, device=args.device)
    s = scan([f"@{args.scan_probe}"], args.db, opts, warn=lambda m: None)
    wall = time.perf_counter() - t0
    workers, device = args.workers, args.device
    # After start-up: from the first file back from a worker to the end (the first file's frames excluded).
    steady_frames = s.frames * (s.scanned - 1) / max(1, s.scanned)
    steady_s = max(1e-9, s.seconds - s.startup_seconds)
    r = {"workers": workers, "device": device, "files": s.scanned, "errors": s.errors, "frames": s.frames,
            "seconds": round(wall, 3), "frames_per_s": round(s.frames / wall, 2),
            "files_per_min": round(60 * s.scanned / wall, 2), "startup_s": round(s.startup_seconds, 3),
            "steady_frames_per_s": round(steady_frames / steady_s, 2)}
    print(json.dumps(r))
    return 0


def model_only(prepared: list, model: str, frames: int, device: str, repeat: int = 3) -> dict:
    import torch

    from fak3zer0.api.detector import Detector

    det = Detector(model, frames=frames, device=device)
    crops = sum(sum(len(t) for t in p.faces.tracks) for p in prepared if p.faces)
    det.score(prepared)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeat):
        det.score(prepared)
    if device == "cuda":
        torch.cuda.synchronize()
    s = (time.perf_counter() - t0) / repeat
    return {"device": device, "crops": crops, "seconds": round(s, 4), "crops_per_s": round(crops / s, 1)}


def rss_probe(file: Path, model: str, frames: int) -> dict:
    """Scan one file in a fresh process (1 worker); peak RSS of that process and of its largest worker."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "--rss-probe", str(file), "--model", model, "--frames", str(frames),
               "--db", str(Path(tmp) / "rss.sqlite")]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _hwm_mb(pid: int | str = "self") -> float:
    """Peak resident set of one process (VmHWM: per address space, so not inherited across exec)."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []


def _rss_probe_main(args) -> int:
    import threading

    from fak3zer0.scan import ScanOptions, scan

    worker_peak = [0.0]
    done = threading.Event()

    def watch() -> None:  # sample the workers' own peak while they live
        while not done.wait(0.02):
            for c in _children(os.getpid()):
                worker_peak[0] = max(worker_peak[0], _hwm_mb(c))

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    s = scan([args.rss_probe], args.db, ScanOptions(model=args.model, frames=args.frames, workers=1, device="cpu"),
             warn=lambda m: None)
    done.set()
    t.join()
    print(json.dumps({"file": args.rss_probe, "frames": s.frames, "main_mb": round(_hwm_mb(), 1),
                      "worker_mb": round(worker_peak[0], 1)}))
    return 0


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=None, help="frames per clip (default: the scanner's default)")
    ap.add_argument("--clips", type=int, default=28, help="generated 3 s 640x480 clips (default: 28)")
    ap.add_argument("--real", type=int, default=4, help="real videos from the shared dev set, if present (default: 4)")
    ap.add_argument("--model", default=None, help="model to scan with (default: the default model; "
                                                  "'tiny' = an untrained Meso4)")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared/data/dev"), help="shared dev data folder")
    ap.add_argument("--out", default=str(ROOT / "bench/results/scan_throughput.json"))
    ap.add_argument("--keep", action="store_true", help="keep the generated clips and databases")
    ap.add_argument("--rss-probe", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--scan-probe", help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.scan_probe:  # first, so that the probe's clock also covers importing torch
        return _scan_probe_main(args)

    import torch

    from fak3zer0 import defaults
    from fak3zer0.scan import default_workers

    args.frames = args.frames or defaults.DEFAULT_FRAMES
    if args.rss_probe:
        return _rss_probe_main(args)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    work = Path(tempfile.mkdtemp(prefix="fak3zer0-scanbench-"))
    model = str(tiny_model(work / "tiny_meso4.pt")) if args.model == "tiny" else args.model or defaults.DEFAULT_MODEL
    log(f"work folder {work}; generating clips")
    files = make_clips(work / "clips", args.clips, 3.0, "pan")
    shared = Path(args.shared) / "videos"
    real = [shared / r for r in REAL_SAMPLES[:args.real] if (shared / r).is_file()]
    files += real
    short = make_clips(work / "rss", 1, 3.0, "short")[0]
    long_ = make_clips(work / "rss", 1, 30.0, "long")[0]
    for f in files:  # page cache warm for everyone
        f.read_bytes()
    cpus = len(os.sched_getaffinity(0))
    res: dict = {"machine": {"cpus": cpus, "platform": platform.platform(), "python": platform.python_version(),
                             "torch": torch.__version__, "cuda": torch.cuda.is_available(),
                             "loadavg_start": os.getloadavg()},
                 "settings": {"frames": args.frames, "generated_clips": args.clips, "real_videos": [str(r) for r in real],
                              "files": len(files), "model": "tiny untrained meso4" if args.model == "tiny" else model,
                              "default_workers": default_workers()}}

    log(f"decode-only over {len(files)} files")
    res["decode_only"] = decode_only(files, args.frames)
    if cpus > 1:  # the machine's parallel headroom, for reading the scan ratios
        res["decode_parallel"] = decode_parallel(files, args.frames, cpus)
        res["decode_parallel"]["speedup_vs_1"] = round(res["decode_parallel"]["frames_per_s"] /
                                                       res["decode_only"]["frames_per_s"], 3)
    log(f"prepare-only (decode + faces) {res['decode_only']}")
    res["prepare_only"], prepared = prepare_only(files, model, args.frames)
    log(f"  {res['prepare_only']}")
    res["scan"] = []
    for w in (1, 2):
        log(f"scan, {w} worker(s)")
        r = scan_run(files, model, args.frames, w, work / f"scan_w{w}.sqlite")
        r["ratio_vs_decode_only"] = round(r["frames_per_s"] / res["decode_only"]["frames_per_s"], 3)
        r["ratio_vs_prepare_only"] = round(r["frames_per_s"] / res["prepare_only"]["frames_per_s"], 3)
        r["steady_ratio_vs_decode_only"] = round(r["steady_frames_per_s"] / res["decode_only"]["frames_per_s"], 3)
        res["scan"].append(r)
        log(f"  {r}")
    res["model_only"] = [model_only(prepared, model, args.frames, "cpu")]
    if torch.cuda.is_available():
        res["model_only"].append(model_only(prepared, model, args.frames, "cuda"))
        log("scan with the model on the GPU")
        g = scan_run(files, model, args.frames, default_workers(), work / "scan_gpu.sqlite", device="cuda")
        g["ratio_vs_decode_only"] = round(g["frames_per_s"] / res["decode_only"]["frames_per_s"], 3)
        g["ratio_vs_prepare_only"] = round(g["frames_per_s"] / res["prepare_only"]["frames_per_s"], 3)
        g["steady_ratio_vs_decode_only"] = round(g["steady_frames_per_s"] / res["decode_only"]["frames_per_s"], 3)
        res["scan"].append(g)
    log("peak RSS, short and 10x longer clip")
    res["rss"] = {"short_3s": rss_probe(short, model, args.frames), "long_30s": rss_probe(long_, model, args.frames)}
    res["rss"]["long_over_short_main"] = round(res["rss"]["long_30s"]["main_mb"] / res["rss"]["short_3s"]["main_mb"], 3)
    res["rss"]["long_over_short_worker"] = round(res["rss"]["long_30s"]["worker_mb"] /
                                                 res["rss"]["short_3s"]["worker_mb"], 3)
    res["machine"]["loadavg_end"] = os.getloadavg()

    rows = [["measure", "frames", "seconds", "frames/s", "files/min", "scan/decode", "scan/prepare",
             "start-up s", "after start-up: frames/s", "scan/decode"]]
    d, p = res["decode_only"], res["prepare_only"]
    rows.append(["decode-only (1 process)", str(d["frames"]), f"{d['seconds']:.1f}", f"{d['frames_per_s']:.1f}",
                 f"{60 * len(files) / d['seconds']:.1f}", "", "", "", "", ""])
    if "decode_parallel" in res:
        q = res["decode_parallel"]
        rows.append([f"decode-only ({q['processes']} processes)", str(q["frames"]), f"{q['seconds']:.1f}",
                     f"{q['frames_per_s']:.1f}", f"{60 * len(files) / q['seconds']:.1f}", "", "", "", "", ""])
    rows.append(["prepare-only: decode+faces (1 process)", str(p["frames"]), f"{p['seconds']:.1f}",
                 f"{p['frames_per_s']:.1f}", f"{60 * len(files) / p['seconds']:.1f}", "", "", "", "", ""])
    for r in res["scan"]:
        rows.append([f"scan, {r['workers']} worker(s), model on {r['device']}", str(r["frames"]), f"{r['seconds']:.1f}",
                     f"{r['frames_per_s']:.1f}", f"{r['files_per_min']:.1f}", f"{r['ratio_vs_decode_only']:.3f}",
                     f"{r.get('ratio_vs_prepare_only', float('nan')):.3f}", f"{r['startup_s']:.1f}",
                     f"{r['steady_frames_per_s']:.1f}", f"{r['steady_ratio_vs_decode_only']:.3f}"])
    print(table(rows))
    print()
    for m in res["model_only"]:
        print(f"model only ({m['device']}): {m['crops']} face crops in {m['seconds']:.3f} s = {m['crops_per_s']:.0f} crops/s")
    r = res["rss"]
    print(f"peak RSS, 3 s clip: main {r['short_3s']['main_mb']} MB, worker {r['short_3s']['worker_mb']} MB; "
          f"30 s clip: main {r['long_30s']['main_mb']} MB, worker {r['long_30s']['worker_mb']} MB "
          f"(ratio {r['long_over_short_main']} / {r['long_over_short_worker']})")
    print(f"{cpus} CPU core(s), load average {res['machine']['loadavg_start'][0]:.1f} -> "
          f"{res['machine']['loadavg_end'][0]:.1f}; files: {len(files)} ({args.clips} generated, {len(real)} real)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
