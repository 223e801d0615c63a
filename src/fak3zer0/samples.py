"""Generate the demo media (from scikit-image's real photos) and list the demo inputs.

``python -m fak3zer0.samples --out samples [--shared ../shared/data/dev]`` writes:

* ``astronaut.png``: Eileen Collins' portrait (a real photograph, public domain, ships with scikit-image);
* ``astronaut_pan.mp4``: a 3 s 640x480 clip panning and zooming over that photo;
* ``astronaut_rotated.mp4``: the same clip stored sideways with a 90 degree rotation tag;
* ``no_face.png``: a photo with no face (scikit-image's coffee cup);
* ``demo-inputs.txt``: those files plus, when the shared dev data exists, two real and two fake
  videos and images from it (listed by path, never copied).
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def _photo(name: str) -> np.ndarray:
    from skimage import data

    return getattr(data, name)()


def pan_frames(image: np.ndarray, n: int, size: tuple[int, int] = (640, 480)) -> list[np.ndarray]:
    """n frames of a slow pan/zoom over ``image`` (W x H = size)."""
    import cv2

    h, w = image.shape[:2]
    out = []
    for i in range(n):
        t = i / max(n - 1, 1)
        zoom = 1.0 + 0.25 * np.sin(np.pi * t)
        cw, ch = w / zoom, w / zoom * size[1] / size[0]
        cx = w / 2 + 0.08 * w * np.sin(2 * np.pi * t)
        cy = min(max(h / 2, ch / 2), h - ch / 2)
        m = np.array([[size[0] / cw, 0, -(cx - cw / 2) * size[0] / cw], [0, size[1] / ch, -(cy - ch / 2) * size[1] / ch]])
        out.append(cv2.warpAffine(image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return out


def write_video(path: str | Path, frames: list[np.ndarray], fps: int = 25, rotation: int = 0, codec: str = "libx264") -> Path:
    """Encode RGB frames with PyAV; ``rotation`` writes a display-matrix rotation tag."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for f in frames:
            for pkt in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    return path


def make_samples(out: str | Path) -> list[Path]:
    from PIL import Image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    astro = _photo("astronaut")
    files = [out / "astronaut.png", out / "astronaut_pan.mp4", out / "astronaut_rotated.mp4", out / "no_face.png"]
    if not files[0].exists():
        Image.fromarray(astro).save(files[0])
    if not files[1].exists():
        write_video(files[1], pan_frames(astro, 75))
    if not files[2].exists():
        # Stored rotated by -90 degrees with a +90 degree display tag: players (and we) show it upright.
        write_video(files[2], [np.ascontiguousarray(np.rot90(f, k=-1)) for f in pan_frames(astro, 25)], rotation=90)
    if not files[3].exists():
        Image.fromarray(_photo("coffee")).save(files[3])
    return files


def shared_examples(dev: str | Path, per_kind: int = 2) -> list[Path]:
    """A few real and fake files from the shared dev set (by path; never copied)."""
    manifest = Path(dev) / "manifest.csv"
    if not manifest.is_file():
        return []
    rows = list(csv.DictReader(manifest.open()))
    picked: list[Path] = []
    for kind in ("video", "image"):
        for label in ("real", "fake"):
            cand = [r for r in rows if r["kind"] == kind and r["label"] == label and r["dataset"].startswith("DFDC")]
            cand = cand or [r for r in rows if r["kind"] == kind and r["label"] == label]
            picked += [Path(dev) / r["relpath"] for r in sorted(cand, key=lambda r: r["relpath"])[:per_kind]]
    return [p for p in picked if p.exists()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fak3zer0.samples", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="samples", help="folder for the generated media (default: samples)")
    ap.add_argument("--shared", default="../shared/data/dev", help="shared dev data folder, if present")
    args = ap.parse_args(argv)
    files = make_samples(args.out) + shared_examples(args.shared)
    listing = Path(args.out) / "demo-inputs.txt"
    listing.write_text("".join(f"{f}\n" for f in files))
    print(listing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
