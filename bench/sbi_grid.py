"""Render a grid of self-blended images: one row per example, columns real (with its five landmarks) | mask | fake.

    python bench/sbi_grid.py                      # public-domain astronaut photo -> docs/img/sbi_grid.png
    python bench/sbi_grid.py --source dev         # real DFDC face crops of the dev set -> runs/sbi_grid_dev.png
    python bench/sbi_grid.py --region lower       # lower-face blends -> docs/img/sbi_grid_lower.png

The dev-set version stays out of the repository on purpose: the DFDC terms do not allow
redistributing its faces (see shared/data/dev/README.md), so the committed picture uses
scikit-image's astronaut photo (NASA, public domain) with a different seed per row.
Landmarks come from our MTCNN, exactly as `preprocess` stores them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SUFFIX = {"face": "", "lower": "_lower"}


def faces_from_dev(n: int, crop_size: int, detector) -> list[tuple[np.ndarray, np.ndarray, str]]:
    from fak3zer0.media.decode import read_image
    from fak3zer0.paths import dev_data_dir

    dev = dev_data_dir()
    if dev is None:
        sys.exit("the dev set (../shared/data/dev) is not available here")
    out = []
    for path in sorted((dev / "images" / "real").glob("dfdc_face224_*.jpg")):
        found = crop_with_landmarks(read_image(path), crop_size, detector)
        if found is not None:
            out.append((*found, path.name))
        if len(out) == n:
            break
    return out


def crop_with_landmarks(image: np.ndarray, crop_size: int, detector):
    from fak3zer0.faces import crop_face, transform_points

    faces = detector.detect(image)
    if not faces:
        return None
    fb = max(faces, key=lambda f: f.area)
    crop, m = crop_face(image, fb.box, crop_size, 1.3)
    return crop, transform_points(fb.landmarks, m).astype(np.float32)


def render(rows: list[tuple[np.ndarray, np.ndarray, int]], tile: int, region: str = "face") -> np.ndarray:
    from fak3zer0.data.sbi import self_blend

    lines = []
    for crop, lm, seed in rows:
        fake, mask = self_blend(crop, lm, np.random.default_rng(seed), region)
        scale = tile / crop.shape[0]
        real = cv2.resize(crop, (tile, tile), interpolation=cv2.INTER_AREA)
        for x, y in lm * scale:
            cv2.circle(real, (int(round(x)), int(round(y))), 2, (255, 40, 40), -1, cv2.LINE_AA)
        m = cv2.resize((mask * 255).astype(np.uint8), (tile, tile), interpolation=cv2.INTER_AREA)
        f = cv2.resize(fake, (tile, tile), interpolation=cv2.INTER_AREA)
        gap = np.full((tile, 4, 3), 255, np.uint8)
        lines.append(np.hstack([real, gap, np.repeat(m[..., None], 3, axis=2), gap, f]))
        lines.append(np.full((4, lines[-1].shape[1], 3), 255, np.uint8))
    return np.vstack(lines[:-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", choices=("astronaut", "dev"), default="astronaut")
    ap.add_argument("--region", choices=("face", "lower"), default="face",
                    help="blend over the whole face or the lower face only")
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--tile", type=int, default=112, help="tile side in pixels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from fak3zer0.faces import build_face_detector

    detector = build_face_detector("mtcnn")
    if args.source == "dev":
        faces = faces_from_dev(args.rows, 256, detector)
        rows = [(c, lm, args.seed + i) for i, (c, lm, _) in enumerate(faces)]
        out = args.out or ROOT / "runs" / f"sbi_grid{SUFFIX[args.region]}_dev.png"
    else:
        from skimage import data

        found = crop_with_landmarks(data.astronaut(), 256, detector)
        if found is None:
            sys.exit("MTCNN found no face in the astronaut photo")
        rows = [(found[0], found[1], args.seed + i) for i in range(args.rows)]
        out = args.out or ROOT / "docs" / "img" / f"sbi_grid{SUFFIX[args.region]}.png"
    if not rows:
        sys.exit("no face found in the chosen images")
    grid = render(rows, args.tile, args.region)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {out} ({grid.shape[1]}x{grid.shape[0]}, {out.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
