"""Options and output helpers shared by several commands."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fak3zer0 import defaults


def add_model_options(p: argparse.ArgumentParser, threshold: bool = True) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default=defaults.DEFAULT_MODEL, metavar="NAME_OR_CHECKPOINT",
                   help=f"shipped model name, checkpoint file, or ARCH:WEIGHTS (default: {defaults.DEFAULT_MODEL}; "
                        "see `fak3zer0 models`)")
    g.add_argument("--frames", type=int, default=defaults.DEFAULT_FRAMES, metavar="N",
                   help=f"frames sampled evenly over the whole clip (default: {defaults.DEFAULT_FRAMES})")
    if threshold:
        g.add_argument("--threshold", type=float, default=None, metavar="P",
                       help="fake probability at or above which a file is called fake (default: the model's, 0.5; "
                            "`fak3zer0 threshold` sets one from your own real footage)")
    g.add_argument("--device", default=defaults.DEFAULT_DEVICE, choices=["auto", "cpu", "cuda"],
                   help="where the model runs (default: auto = cuda if available)")
    g.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx", "onnx-int8"],
                   help="how the model runs: auto = on the CPU the model's 8-bit ONNX twin if it has one, else "
                        "its float32 twin, else PyTorch (see fak3zer0 export); torch = exact float32 PyTorch")
    g.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for the model (default: $FAK3ZER0_THREADS or half the cores)")
    g.add_argument("--face-detector", default=defaults.DEFAULT_FACE_DETECTOR, choices=["mtcnn", "haar"],
                   help="face detector (default: mtcnn)")
    g.add_argument("--detect-every", type=int, default=defaults.DETECT_EVERY, metavar="K",
                   help=f"run the face detector on every K-th sampled frame and interpolate boxes between "
                        f"(falls back to detecting every frame when faces change; default {defaults.DETECT_EVERY})")
    g.add_argument("--full-detect-every", type=int, default=defaults.FULL_DETECT_EVERY, metavar="N",
                   help=f"of those detections, search the whole frame on every N-th; on the others the known "
                        f"faces are found again from their last box (the whole frame again when a face is lost; "
                        f"new faces are found "
                        f"at the next whole-frame search; 1 = always the whole frame; default "
                        f"{defaults.FULL_DETECT_EVERY})")


def progress_enabled(flag: bool | None) -> bool:
    return sys.stderr.isatty() if flag is None else flag


def add_progress_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="always show progress bars on stderr (default: only on a terminal)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress bars")


def format_table(headers: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """Plain aligned text table; ``align`` is a string of 'l'/'r' per column."""
    align = align or "l" * len(headers)
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    def fmt(row):
        return "  ".join(str(c).rjust(w) if a == "r" else str(c).ljust(w) for c, w, a in zip(row, widths, align)).rstrip()
    line = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(headers), line] + [fmt(r) for r in rows])


def collect_paths(args) -> list[str]:
    """The PATH arguments plus the lines of --inputs-from (blank lines and # comments skipped)."""
    paths = list(args.paths)
    if args.inputs_from:
        text = Path(args.inputs_from).read_text(encoding="utf-8")
        paths += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return paths


def make_detector(args):
    """The Detector the model options in ``args`` describe."""
    from fak3zer0.api.detector import Detector

    return Detector(args.model, frames=args.frames, threshold=getattr(args, "threshold", None), device=args.device,
                    face_detector=args.face_detector, threads=args.threads, detect_every=args.detect_every,
                    full_detect_every=args.full_detect_every, backend=args.backend)


def analyse(items, detector, progress: bool | None, heatmap_dir: str | None = None) -> list:
    """Every discovered input's VideoVerdict, with progress bars on stderr when wanted; unreadable inputs and
    inputs without a face are reported on stderr as they come."""
    from fak3zer0.api.results import VideoVerdict

    show = progress_enabled(progress)
    results: list[VideoVerdict] = []
    bar = frames_bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="files", unit="file", file=sys.stderr, leave=False, position=0)
        frames_bar = tqdm(total=0, desc="frames", unit="frame", file=sys.stderr, leave=False, position=1)

    def on_progress(stage: str, done: int, total: int) -> None:
        if frames_bar is not None:
            frames_bar.total = total
            frames_bar.n = done
            frames_bar.refresh()

    for item in items:
        if item.error:
            verdict = VideoVerdict.failed(item.path, item.error, model=detector.model_name)
        else:
            verdict = detector.detect(item.path, heatmap_dir=heatmap_dir, progress=on_progress if show else None)
        results.append(verdict)
        if verdict.verdict == "error":
            print(f"fak3zer0: {verdict.path}: {verdict.error}", file=sys.stderr)
        elif verdict.verdict == "no_face":
            print(f"fak3zer0: {verdict.path}: no face found in {verdict.frames_used} frame(s)", file=sys.stderr)
        if bar:
            bar.set_postfix_str(Path(item.path).name[:30])
            bar.update(1)
    if bar:
        frames_bar.close()
        bar.close()
    return results
