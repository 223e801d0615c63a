"""Add MediaPipe face-mesh landmarks (468 points) to a face-crop cache, for self-blending masks.

    pip install mediapipe==0.10.21     # in a separate venv: it pins numpy<2 and brings its own OpenCV
    python tools/mesh_landmarks.py CACHE [CACHE ...]

The cache's own landmarks are MTCNN's five points; ``fak3zer0.data.sbi`` grows an ellipse from
them. With many points it uses their convex hull instead, as the SBI paper does with 81. This
writes, for every cache entry ``X.npz``, ``mesh468/X.npz`` holding ``landmarks``: (K, 468, 2) in
crop pixels, NaN for a crop where the mesh found no face. ``tools/train_default.py --mesh`` reads
them. MediaPipe's model files are inside its wheel (Apache-2.0): nothing is downloaded. Training
only; detection does not need it. Needs no fak3zer0 import, so it runs in that separate venv.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

POINTS = 468
MESH_DIR = "mesh468"


def mesh_points(face_mesh, crop: np.ndarray) -> np.ndarray:
    """(468, 2) pixel coordinates of the largest face in an RGB crop, NaN when none is found."""
    result = face_mesh.process(np.ascontiguousarray(crop))
    if not result.multi_face_landmarks:
        return np.full((POINTS, 2), np.nan, np.float32)
    h, w = crop.shape[:2]
    marks = result.multi_face_landmarks[0].landmark
    return np.array([(m.x * w, m.y * h) for m in marks[:POINTS]], np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("caches", type=Path, nargs="+")
    ap.add_argument("--min-confidence", type=float, default=0.3, help="face-mesh detection confidence")
    args = ap.parse_args(argv)
    try:
        from mediapipe.python.solutions.face_mesh import FaceMesh
    except ImportError:
        raise SystemExit("needs mediapipe==0.10.21 (the last release with the bundled face mesh): "
                         "pip install mediapipe==0.10.21 in a separate venv") from None
    with FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                  min_detection_confidence=args.min_confidence) as face_mesh:
        for cache in args.caches:
            out_dir = cache / MESH_DIR
            out_dir.mkdir(exist_ok=True)
            entries = [json.loads(line) for line in (cache / "index.jsonl").read_text().splitlines() if line.strip()]
            files = sorted({e["file"] for e in entries if e.get("status") == "ok" and e.get("file")})
            t0, crops_seen, found = time.time(), 0, 0
            for i, name in enumerate(files):
                target = out_dir / Path(name).name
                if target.is_file():
                    continue
                crops = np.load(cache / name)["crops"]
                marks = np.stack([mesh_points(face_mesh, c) for c in crops])
                np.savez_compressed(target, landmarks=marks)
                crops_seen += len(crops)
                found += int(np.isfinite(marks[:, 0, 0]).sum())
                if i % 500 == 0:
                    print(f"{cache.name}: {i}/{len(files)} files, mesh found on {found}/{crops_seen} crops, "
                          f"{time.time() - t0:.0f}s", flush=True)
            print(f"{cache.name}: done, mesh found on {found}/{crops_seen} new crops in {time.time() - t0:.0f}s",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
